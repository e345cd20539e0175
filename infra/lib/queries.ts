/**
 * Named Athena queries saved in the workgroup: the history of one item, changes per day,
 * and a snapshot of the table as of a point in time. Written for the archive's standard
 * columns (`keys`, `event_name`, `sequence_number`, `approximate_creation_time`, `new_image`)
 * and its partitions (`year`, `month`, `day`). They run as saved; the item key and the time
 * are examples, marked by a comment, to replace.
 */

/** One named query. */
export interface NamedQuerySpec {
  /** Construct id (letters and digits). */
  readonly id: string;
  /** Name shown in the Athena console. */
  readonly name: string;
  /** What it answers. */
  readonly description: string;
  /** The SQL. */
  readonly sql: string;
}

/**
 * Sequence numbers are decimal strings of up to 40 digits (more than Athena's DECIMAL(38)):
 * ordering by length, then text, is their numeric order.
 */
const SEQ_DESC = 'length(sequence_number) DESC, sequence_number DESC';
const SEQ_ASC = 'length(sequence_number), sequence_number';

/**
 * Named queries from the ready query files (`schemas/queries/*.sql`), saved as they are;
 * the query's database is set on the named query.
 */
export function namedQueriesFromFiles(files: readonly [string, string][]): NamedQuerySpec[] {
  return files.map(([name, sql]) => ({
    id: name.replace(/[^A-Za-z0-9]/g, ''),
    name,
    description: firstComment(sql) ?? `schemas/queries/${name}.sql`,
    sql,
  }));
}

/** The first `--` comment line of a query, as its description (Athena allows 1024 characters). */
function firstComment(sql: string): string | undefined {
  const line = sql.split('\n').find((l) => l.trim().startsWith('--'));
  return line?.trim().replace(/^--\s*/, '').slice(0, 1024);
}

/** The three named queries over `"database"."table"`. */
export function namedQueries(database: string, table: string): NamedQuerySpec[] {
  const from = `"${database}"."${table}"`;
  return [
    {
      id: 'ItemHistory',
      name: `${table}: item history`,
      description: `Every change of one item of ${table}, oldest first (replace the example key).`,
      sql: [
        'SELECT approximate_creation_time, event_name, sequence_number, old_image, new_image',
        `FROM ${from}`,
        `WHERE keys = '{"pk":{"S":"INV#1001"}}' -- the item's key, as DynamoDB JSON`,
        `ORDER BY approximate_creation_time, ${SEQ_ASC};`,
      ].join('\n'),
    },
    {
      id: 'ChangesPerDay',
      name: `${table}: changes per day`,
      description: `Inserts, modifications and removals of ${table} per event day.`,
      sql: [
        'SELECT year, month, day, event_name, count(*) AS changes',
        `FROM ${from}`,
        'GROUP BY year, month, day, event_name',
        'ORDER BY year, month, day, event_name;',
      ].join('\n'),
    },
    {
      id: 'AsOfSnapshot',
      name: `${table}: snapshot as of a time`,
      description: `Every item of ${table} as it was at a point in time: its last change before then, unless a removal.`,
      sql: [
        'SELECT keys, new_image AS item, approximate_creation_time AS changed_at',
        'FROM (',
        '  SELECT keys, event_name, new_image, approximate_creation_time,',
        `    row_number() OVER (PARTITION BY keys ORDER BY approximate_creation_time DESC, ${SEQ_DESC}) AS rn`,
        `  FROM ${from}`,
        "  WHERE approximate_creation_time <= TIMESTAMP '2026-01-01 00:00:00.000' -- the point in time (UTC)",
        ')',
        "WHERE rn = 1 AND event_name <> 'REMOVE'",
        'ORDER BY keys;',
      ].join('\n'),
    },
  ];
}
