//! Write: the merged rows of a day as the version's Parquet files, with the column
//! chunks of each row group encoded and compressed on several threads at once (the
//! Parquet crate's per-column writers), while a merging thread prepares the next
//! batches (merged, images put back, output columns added) a few ahead.
//!
//! Where row groups and files end depends only on the rows: before it sends a batch, the
//! writer waits for the encoders' exact sizes up to the batch before the one they are
//! encoding (so they always have the next one queued), and decides from those, so a
//! rerun over the same sources writes the same bytes.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use super::sort::{Merged, RunSorter};
use sha2::{Digest, Sha256};

use crate::archive::reader;
use crate::encode::parquet::{standard_fields, writer_properties};
use crate::schema::TableSchema;

/// How the version's files are laid out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Typed columns and `type_errors` of this schema follow the standard columns.
    pub schema: Option<TableSchema>,
    /// The constant last column, naming the compaction version.
    pub version: VersionColumn,
    /// A file ends once it reaches about this many bytes.
    pub max_file_bytes: usize,
    /// A row group ends once its encoded columns reach about this many bytes.
    pub row_group_bytes: usize,
    /// Most rows in a row group.
    pub row_group_max_rows: usize,
    /// Threads encoding column chunks.
    pub encoders: usize,
}

/// The constant last column of the compacted files: every row carries the version.
#[derive(Debug, Clone)]
pub struct VersionColumn {
    /// The column's name.
    pub name: String,
    /// Its value in every row: the compaction version.
    pub value: String,
}

/// One finished file, whose bytes went to its [`Pieces`](crate::sink::Pieces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedFile {
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Rows it holds.
    pub rows: u64,
}

/// Where a file's pieces go: the sender of a channel whose receiver a sink stores
/// (see [`crate::sink::ObjectSink::replace_streamed`]).
pub type PieceSender = tokio::sync::mpsc::Sender<Option<bytes::Bytes>>;

/// Bytes of a file handed on at once: the S3 sink's part size, so each piece goes up
/// as one part, as it is written.
pub const PIECE_BYTES: usize = crate::sink::s3::DEFAULT_PART_SIZE;

/// Pieces of a file written ahead of the sink that stores them.
pub const PIECES_AHEAD: usize = 4;

/// What the written files hold.
pub struct Written {
    /// The files, in order.
    pub files: Vec<FinishedFile>,
    /// Rows written.
    pub rows: u64,
    /// Copies of events dropped.
    pub duplicates: u64,
    /// Sorted runs spilled while reading.
    pub spilled_runs: usize,
    /// Bytes of those runs.
    pub spilled_bytes: u64,
}

/// The copies to skip wherever they come (read orders, sorted), once known: asked for
/// after the runs are opened, so that finding them overlaps that.
pub type Displaced<'a> = Box<dyn FnOnce() -> Result<Vec<u64>, String> + Send + 'a>;

/// Merges the sorters' runs, without the `displaced` copies, and writes them as files,
/// each to the pieces' sender that `open` gives when it starts (in order), a piece at a
/// time as it is written.
pub fn write_sorted(
    sorters: Vec<RunSorter>,
    displaced: Displaced<'_>,
    layout: &Layout,
    open: &mut dyn FnMut() -> Result<PieceSender, String>,
) -> Result<Written, String> {
    let mut merged = Merged::new(sorters).map_err(|e| e.to_string())?;
    merged.skip(displaced()?);
    let schema = output_schema(layout);
    let batch_bytes = BATCH_BYTES.min(layout.max_file_bytes / 8).max(1);
    // The merge, and each batch's output columns, run on a thread of their own, a few
    // batches ahead of the encoders, so that neither waits for the other.
    let (batches_tx, batches) = mpsc::sync_channel::<Result<RecordBatch, String>>(MERGED_AHEAD);
    std::thread::scope(|scope| {
        let merging = std::thread::Builder::new()
            .name("compact-merge".into())
            .spawn_scoped(scope, || {
                merge(merged, &schema, layout, batch_bytes, batches_tx)
            })
            .map_err(|e| format!("starting the merging thread: {e}"))?;
        let encoded = encode_batches(batches, &schema, layout, open);
        let merged = merging
            .join()
            .map_err(|_| "the merging thread stopped".to_string())?;
        let (files, rows) = encoded?;
        let (duplicates, spilled_runs, spilled_bytes) = merged;
        Ok(Written {
            files,
            rows,
            duplicates,
            spilled_runs,
            spilled_bytes,
        })
    })
}

/// Merged batches, completed with the output's columns, held ahead of the encoders.
const MERGED_AHEAD: usize = 2;

/// The merging thread: sends each merged batch with the output's columns, or the first
/// error (which fails the day), until the rows end or the receiver has gone; returns the copies dropped and
/// the runs spilled (count, bytes).
fn merge(
    mut merged: Merged,
    schema: &SchemaRef,
    layout: &Layout,
    batch_bytes: usize,
    out: mpsc::SyncSender<Result<RecordBatch, String>>,
) -> (u64, usize, u64) {
    loop {
        let next = merged
            .next_batch(batch_bytes)
            .map_err(|e| e.to_string())
            .and_then(|b| b.map(|b| complete(&b, schema, layout)).transpose());
        match next {
            Ok(Some(batch)) => {
                if out.send(Ok(batch)).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = out.send(Err(e));
                break;
            }
        }
    }
    (
        merged.duplicates(),
        merged.spilled_runs(),
        merged.spilled_bytes(),
    )
}

/// Encodes the completed batches as files, each to the sender `open` gives; returns
/// the files and the rows written.
fn encode_batches(
    batches: mpsc::Receiver<Result<RecordBatch, String>>,
    schema: &SchemaRef,
    layout: &Layout,
    open: &mut dyn FnMut() -> Result<PieceSender, String>,
) -> Result<(Vec<FinishedFile>, u64), String> {
    let pool = EncoderPool::start_threads(layout.encoders.max(1))?;
    let buffers = Buffers::default();
    let mut files = Vec::new();
    let mut rows = 0u64;
    let mut file: Option<OpenFile> = None;
    let mut assignment: Option<Vec<usize>> = None;
    loop {
        // Merged while the encoders work on the batch sent before.
        let next = batches.recv().ok().transpose()?;
        if let Some(f) = file.as_mut() {
            if f.end_row_group_if_full(&pool, layout)? {
                finish(file.take(), &pool, &mut files)?;
            }
        }
        let Some(mut rest) = next else { break };
        rows += rest.num_rows() as u64;
        let assignment = assignment.get_or_insert_with(|| assign(&rest, pool.len()));
        while rest.num_rows() > 0 {
            let f = match file.as_mut() {
                Some(f) => f,
                None => file.insert(OpenFile::new(schema, layout, open()?, buffers.clone())?),
            };
            let room = layout
                .row_group_max_rows
                .saturating_sub(f.group_rows)
                .max(1);
            let part = rest.slice(0, room.min(rest.num_rows()));
            rest = rest.slice(part.num_rows(), rest.num_rows() - part.num_rows());
            f.send(&pool, assignment, part)?;
            if rest.num_rows() > 0 && f.end_row_group_if_full(&pool, layout)? {
                finish(file.take(), &pool, &mut files)?;
            }
        }
    }
    finish(file.take(), &pool, &mut files)?;
    Ok((files, rows))
}

/// Bytes of merged rows per batch handed to the encoders.
const BATCH_BYTES: usize = 8 << 20;

/// The compacted files' columns: the standard ones, the schema's typed ones, the
/// version.
fn output_schema(layout: &Layout) -> SchemaRef {
    let mut fields = standard_fields();
    if let Some(s) = &layout.schema {
        fields.extend(s.arrow_fields());
    }
    fields.push(Field::new(
        layout.version.name.as_str(),
        DataType::Utf8,
        false,
    ));
    Arc::new(Schema::new(fields))
}

/// Settings of compacted files: the archive's, with row groups bounded by
/// [`Layout::row_group_max_rows`], and no statistics for the JSON text columns (no
/// query prunes on the minimum of a document).
pub fn properties(layout: &Layout) -> WriterProperties {
    let mut b = writer_properties()
        .into_builder()
        .set_max_row_group_size(layout.row_group_max_rows);
    for column in ["keys", "new_image", "old_image", "record"] {
        b = b.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    b.build()
}

/// A merged batch with the output's columns: the standard ones (without the read
/// order), typed columns from the changes when there is a schema, the version.
fn complete(
    batch: &RecordBatch,
    schema: &SchemaRef,
    layout: &Layout,
) -> Result<RecordBatch, String> {
    let batch = &super::slim::full(batch)?;
    let standard = standard_fields().len();
    let mut columns: Vec<ArrayRef> = batch.columns()[..standard].to_vec();
    if let Some(s) = &layout.schema {
        let changes = reader::batch_rows(batch)?
            .into_iter()
            .map(reader::Row::into_change)
            .collect::<Result<Vec<_>, _>>()?;
        columns
            .extend(crate::schema::flatten::typed_columns(s, &changes).map_err(|e| e.to_string())?);
    }
    let version: StringArray =
        std::iter::repeat_n(Some(layout.version.value.as_str()), batch.num_rows()).collect();
    columns.push(Arc::new(version));
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

/// Which encoder takes each column: the largest columns first, each to the encoder
/// with the least so far (by the first batch's sizes).
fn assign(batch: &RecordBatch, encoders: usize) -> Vec<usize> {
    let mut order: Vec<(usize, usize)> = batch
        .columns()
        .iter()
        .map(|c| c.get_array_memory_size())
        .enumerate()
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut load = vec![0usize; encoders.max(1)];
    let mut out = vec![0usize; batch.num_columns()];
    for (column, size) in order {
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .unwrap_or((0, &0));
        out[column] = least;
        load[least] += size;
    }
    out
}

/// A file being written.
struct OpenFile {
    writer: SerializedFileWriter<PieceWriter>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Leaf column writers (first leaf index) of each field.
    first_leaf: Vec<usize>,
    row_group: usize,
    group_open: bool,
    /// Rows sent to the row group open now, and to the file.
    group_rows: usize,
    file_rows: u64,
    /// Batches sent to the encoders whose sizes are not yet collected.
    in_flight: usize,
    /// The open row group's encoded bytes up to the last batch collected.
    in_progress: usize,
}

impl OpenFile {
    fn new(
        schema: &SchemaRef,
        layout: &Layout,
        out: PieceSender,
        buffers: Buffers,
    ) -> Result<OpenFile, String> {
        let (writer, factory) = ArrowWriter::try_new(
            PieceWriter::new(out, buffers),
            Arc::clone(schema),
            Some(properties(layout)),
        )
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(|e| e.to_string())?;
        let mut first_leaf = Vec::with_capacity(schema.fields().len());
        let mut leaves = 0;
        for field in schema.fields() {
            first_leaf.push(leaves);
            let empty = arrow::array::new_empty_array(field.data_type());
            leaves += compute_leaves(field, &empty)
                .map_err(|e| e.to_string())?
                .len();
        }
        Ok(OpenFile {
            writer,
            factory,
            schema: Arc::clone(schema),
            first_leaf,
            row_group: 0,
            group_open: false,
            group_rows: 0,
            file_rows: 0,
            in_flight: 0,
            in_progress: 0,
        })
    }

    /// Sends a batch to the encoders (opening a row group first if none is open).
    fn send(
        &mut self,
        pool: &EncoderPool,
        assignment: &[usize],
        batch: RecordBatch,
    ) -> Result<(), String> {
        if !self.group_open {
            let writers = self
                .factory
                .create_column_writers(self.row_group)
                .map_err(|e| e.to_string())?;
            let mut shares: Vec<Vec<Assigned>> = (0..pool.len()).map(|_| Vec::new()).collect();
            let mut writers = writers.into_iter();
            for (f, field) in self.schema.fields().iter().enumerate() {
                let next = self.first_leaf.get(f + 1).copied();
                let count = next.unwrap_or(usize::MAX) - self.first_leaf[f];
                let leaves: Vec<(usize, ArrowColumnWriter)> = writers
                    .by_ref()
                    .take(count)
                    .enumerate()
                    .map(|(k, w)| (self.first_leaf[f] + k, w))
                    .collect();
                shares[assignment[f]].push(Assigned {
                    field_index: f,
                    field: Arc::clone(field),
                    writers: leaves,
                });
            }
            pool.start(shares)?;
            self.group_open = true;
        }
        self.group_rows += batch.num_rows();
        self.file_rows += batch.num_rows() as u64;
        self.in_flight += 1;
        pool.write(batch)
    }

    /// Waits for the oldest batch in flight; the row group's size up to it.
    fn collect_one(&mut self, pool: &EncoderPool) -> Result<(), String> {
        if self.in_flight > 0 {
            self.in_progress = pool.written()?;
            self.in_flight -= 1;
        }
        Ok(())
    }

    /// Ends the row group when its rows, or its size or the file's up to the batch
    /// before the last one sent, call for it (the last one is still being encoded, so
    /// the encoders always have a batch to work on), and says whether the file is full
    /// (should end). Sizes lag by one batch, the same way on every run: where row
    /// groups and files end still depends only on the rows.
    fn end_row_group_if_full(
        &mut self,
        pool: &EncoderPool,
        layout: &Layout,
    ) -> Result<bool, String> {
        while self.in_flight > 1 {
            self.collect_one(pool)?;
        }
        let written = self.writer.bytes_written();
        if self.group_open
            && (self.group_rows >= layout.row_group_max_rows
                || self.in_progress >= layout.row_group_bytes
                || written + self.in_progress >= layout.max_file_bytes)
        {
            self.end_row_group(pool)?;
        }
        Ok(self.writer.bytes_written() >= layout.max_file_bytes)
    }

    fn end_row_group(&mut self, pool: &EncoderPool) -> Result<(), String> {
        if !self.group_open {
            return Ok(());
        }
        while self.in_flight > 0 {
            self.collect_one(pool)?;
        }
        let mut chunks = pool.close()?;
        chunks.sort_by_key(|(leaf, _)| *leaf);
        let mut group = self.writer.next_row_group().map_err(|e| e.to_string())?;
        for (_, chunk) in chunks {
            chunk
                .append_to_row_group(&mut group)
                .map_err(|e| e.to_string())?;
        }
        group.close().map_err(|e| e.to_string())?;
        self.group_open = false;
        self.group_rows = 0;
        self.in_progress = 0;
        self.row_group += 1;
        Ok(())
    }

    /// Ends the file: its last row group, then the footer.
    fn finish(mut self, pool: &EncoderPool) -> Result<FinishedFile, String> {
        self.end_row_group(pool)?;
        let rows = self.file_rows;
        let pieces = self.writer.into_inner().map_err(|e| e.to_string())?;
        let (bytes, sha256) = pieces.end().map_err(|e| e.to_string())?;
        Ok(FinishedFile {
            bytes,
            sha256,
            rows,
        })
    }
}

/// Ends a file, if one is open, and adds it to `files`.
fn finish(
    file: Option<OpenFile>,
    pool: &EncoderPool,
    files: &mut Vec<FinishedFile>,
) -> Result<(), String> {
    if let Some(f) = file {
        files.push(f.finish(pool)?);
    }
    Ok(())
}

/// A file's bytes as they are written, handed on in pieces of [`PIECE_BYTES`] and
/// hashed on the way: no file is ever held whole.
struct PieceWriter {
    piece: Vec<u8>,
    sha256: Sha256,
    bytes: u64,
    out: PieceSender,
    buffers: Buffers,
}

/// What a writer whose pieces are no longer taken says.
pub const STORE_STOPPED: &str = "storing the compacted files stopped";

/// Piece buffers given back once stored, for the next pieces: their memory is reused
/// rather than mapped and zeroed again for every piece.
#[derive(Clone, Default)]
struct Buffers(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

/// Buffers kept for reuse: about as many as are ever on their way at once.
const BUFFERS_KEPT: usize = 12;

impl Buffers {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut b| b.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(PIECE_BYTES))
    }

    /// `piece` as shared bytes whose buffer comes back here once the sink drops it.
    fn share(&self, piece: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from_owner(Pooled {
            piece,
            buffers: self.clone(),
        })
    }
}

/// A piece's buffer, given back to its [`Buffers`] when dropped.
struct Pooled {
    piece: Vec<u8>,
    buffers: Buffers,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.piece
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut piece = std::mem::take(&mut self.piece);
        piece.clear();
        if let Ok(mut kept) = self.buffers.0.lock() {
            if kept.len() < BUFFERS_KEPT {
                kept.push(piece);
            }
        }
    }
}

impl PieceWriter {
    fn new(out: PieceSender, buffers: Buffers) -> Self {
        PieceWriter {
            piece: buffers.take(),
            sha256: Sha256::new(),
            bytes: 0,
            out,
            buffers,
        }
    }

    /// Hands on a piece, or the end (`None`).
    fn send(&mut self, piece: Option<Vec<u8>>) -> std::io::Result<()> {
        let piece = piece.map(|p| self.buffers.share(p));
        self.out
            .blocking_send(piece)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, STORE_STOPPED))
    }

    /// Hands on the last piece and the end; the file's size and SHA-256 (hex).
    fn end(mut self) -> std::io::Result<(u64, String)> {
        if !self.piece.is_empty() {
            let piece = std::mem::take(&mut self.piece);
            self.send(Some(piece))?;
        }
        self.send(None)?;
        let sha256 = crate::model::hex::hex(&self.sha256.finalize());
        Ok((self.bytes, sha256))
    }
}

impl std::io::Write for PieceWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.sha256.update(data);
        self.bytes += data.len() as u64;
        self.piece.extend_from_slice(data);
        if self.piece.len() >= PIECE_BYTES {
            let next = self.buffers.take();
            let piece = std::mem::replace(&mut self.piece, next);
            self.send(Some(piece))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The leaf column writers of some of a row group's fields, for one encoder.
struct Assigned {
    field_index: usize,
    field: arrow::datatypes::FieldRef,
    writers: Vec<(usize, ArrowColumnWriter)>,
}

enum Task {
    Start(Vec<Assigned>),
    Write(RecordBatch),
    Close,
}

enum Reply {
    Written(Result<usize, String>),
    Closed(Result<Vec<(usize, ArrowColumnChunk)>, String>),
}

struct Encoder {
    tasks: Option<mpsc::Sender<Task>>,
    replies: mpsc::Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
}

/// Threads that each encode and compress their share of a row group's columns.
struct EncoderPool {
    encoders: Vec<Encoder>,
}

const STOPPED: &str = "a column encoding thread stopped";

impl EncoderPool {
    fn start_threads(n: usize) -> Result<EncoderPool, String> {
        let mut pool = EncoderPool {
            encoders: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let (tasks, task_rx) = mpsc::channel::<Task>();
            let (reply_tx, replies) = mpsc::channel::<Reply>();
            let thread = std::thread::Builder::new()
                .name("compact-encode".into())
                .spawn(move || encode(task_rx, reply_tx))
                .map_err(|e| format!("starting a column encoding thread: {e}"))?;
            pool.encoders.push(Encoder {
                tasks: Some(tasks),
                replies,
                thread: Some(thread),
            });
        }
        Ok(pool)
    }

    fn len(&self) -> usize {
        self.encoders.len()
    }

    fn send(&self, encoder: &Encoder, task: Task) -> Result<(), String> {
        encoder
            .tasks
            .as_ref()
            .ok_or_else(|| STOPPED.to_string())?
            .send(task)
            .map_err(|_| STOPPED.to_string())
    }

    fn start(&self, shares: Vec<Vec<Assigned>>) -> Result<(), String> {
        for (e, share) in self.encoders.iter().zip(shares) {
            self.send(e, Task::Start(share))?;
        }
        Ok(())
    }

    fn write(&self, batch: RecordBatch) -> Result<(), String> {
        for e in &self.encoders {
            self.send(e, Task::Write(batch.clone()))?;
        }
        Ok(())
    }

    /// One reply from every encoder, picked by `pick`; the first error if any failed.
    fn gather<T>(&self, pick: fn(Reply) -> Option<Result<T, String>>) -> Result<Vec<T>, String> {
        let mut out = Vec::with_capacity(self.encoders.len());
        let mut first_error = None;
        for e in &self.encoders {
            match e.replies.recv().ok().and_then(pick) {
                Some(Ok(v)) => out.push(v),
                Some(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                None => {
                    first_error.get_or_insert_with(|| STOPPED.to_string());
                }
            }
        }
        first_error.map_or(Ok(out), Err)
    }

    /// Waits for every encoder to write the last batch; the row group's encoded size.
    fn written(&self) -> Result<usize, String> {
        let sizes = self.gather(|r| match r {
            Reply::Written(size) => Some(size),
            Reply::Closed(_) => None,
        })?;
        Ok(sizes.into_iter().sum())
    }

    /// Ends every encoder's column chunks.
    fn close(&self) -> Result<Vec<(usize, ArrowColumnChunk)>, String> {
        for e in &self.encoders {
            self.send(e, Task::Close)?;
        }
        let chunks = self.gather(|r| match r {
            Reply::Closed(chunks) => Some(chunks),
            Reply::Written(_) => None,
        })?;
        Ok(chunks.into_iter().flatten().collect())
    }
}

impl Drop for EncoderPool {
    fn drop(&mut self) {
        for e in &mut self.encoders {
            e.tasks.take();
        }
        for e in &mut self.encoders {
            if let Some(t) = e.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// One encoder thread: writes its columns of each batch, closes them on request.
fn encode(tasks: mpsc::Receiver<Task>, replies: mpsc::Sender<Reply>) {
    let mut mine: Vec<Assigned> = Vec::new();
    for task in tasks {
        let reply = match task {
            Task::Start(share) => {
                mine = share;
                continue;
            }
            Task::Write(batch) => Reply::Written(write_share(&mut mine, &batch)),
            Task::Close => Reply::Closed(close_share(std::mem::take(&mut mine))),
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

fn write_share(mine: &mut [Assigned], batch: &RecordBatch) -> Result<usize, String> {
    let mut size = 0;
    for a in mine.iter_mut() {
        let leaves =
            compute_leaves(&a.field, batch.column(a.field_index)).map_err(|e| e.to_string())?;
        for ((_, writer), leaf) in a.writers.iter_mut().zip(leaves) {
            writer.write(&leaf).map_err(|e| e.to_string())?;
            size += writer.get_estimated_total_bytes();
        }
    }
    Ok(size)
}

fn close_share(mine: Vec<Assigned>) -> Result<Vec<(usize, ArrowColumnChunk)>, String> {
    let mut out = Vec::new();
    for a in mine {
        for (leaf, writer) in a.writers {
            out.push((leaf, writer.close().map_err(|e| e.to_string())?));
        }
    }
    Ok(out)
}
