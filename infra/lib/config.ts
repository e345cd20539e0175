/**
 * Deployment settings of the archiver stack, read from CDK context (`-c key=value`) with
 * documented defaults, and checked before anything is built.
 */
import { Node } from 'constructs';

/** How the archive bucket's Object Lock protects archived objects. */
export type ObjectLockMode = 'COMPLIANCE' | 'GOVERNANCE' | 'OFF';

/** Output format of the archiver (the `ARCHIVE_FORMAT` setting). */
export type ArchiveFormat = 'parquet' | 'jsonl.gz';

/** Everything the stack needs to know; every field has a default except the alarm targets. */
export interface ArchiverConfig {
  /** Directory holding the built function (`bootstrap`), from `cargo lambda build --release --arm64`. */
  readonly functionAssetDir: string;
  /** Directory with the table schema files (`*.json`) and their generated Glue tables (`generated/`). */
  readonly schemasDir: string;
  /** Stream ARN of an existing DynamoDB table; when unset (and no Kinesis stream), a demo table is created. */
  readonly streamArn?: string;
  /** ARN of a Kinesis data stream carrying DynamoDB changes, read instead of a DynamoDB stream. */
  readonly kinesisStreamArn?: string;
  /** Customer-managed KMS key of the Kinesis stream, when it has one (the function must decrypt). */
  readonly kinesisKeyArn?: string;
  /** Name of the demo table created when no stream is given. */
  readonly demoTableName: string;
  /** Source tables cataloged with the standard columns only (no schema file). */
  readonly standardTables: readonly string[];
  /** Output format. */
  readonly format: ArchiveFormat;
  /** Key prefix inside the archive bucket: empty, or ending with `/`. */
  readonly prefix: string;
  /** How long archived objects are locked and kept, in years. */
  readonly retentionYears: number;
  /** Object Lock mode of the archive bucket. */
  readonly objectLockMode: ObjectLockMode;
  /** Days after which archived objects move to Standard-IA. */
  readonly infrequentAccessAfterDays: number;
  /** Days after which archived objects move to Glacier Instant Retrieval. */
  readonly glacierInstantRetrievalAfterDays: number;
  /** Records per function invocation (ESM `BatchSize`). */
  readonly batchSize: number;
  /** Seconds the ESM gathers records before invoking (`MaximumBatchingWindowInSeconds`). */
  readonly batchingWindowSeconds: number;
  /** Concurrent batches per shard (`ParallelizationFactor`). */
  readonly parallelizationFactor: number;
  /** Retries of a failing batch before it goes to the on-failure queue (`MaximumRetryAttempts`). */
  readonly retryAttempts: number;
  /** Oldest record the ESM still sends before it goes to the on-failure queue (`MaximumRecordAgeInSeconds`). */
  readonly maxRecordAgeSeconds: number;
  /** Function memory in MB. */
  readonly memorySize: number;
  /** Function timeout in seconds. */
  readonly timeoutSeconds: number;
  /** Largest archive file, in bytes of buffered change records (`ARCHIVE_MAX_FILE_BYTES`). */
  readonly maxFileBytes: number;
  /** Most records per archive file (`ARCHIVE_MAX_FILE_RECORDS`). */
  readonly maxFileRecords: number;
  /** `RUST_LOG` of the function. */
  readonly rustLog: string;
  /** Glue database name. */
  readonly databaseName: string;
  /** Days after which Athena query results are deleted. */
  readonly athenaResultsExpiryDays: number;
  /** When the maintenance function compacts closed days (an EventBridge schedule expression, UTC). */
  readonly compactSchedule: string;
  /** When the maintenance function verifies every object (an EventBridge schedule expression, UTC). */
  readonly verifySchedule: string;
  /** Closed days this far back are compacted when they have no current compaction (`COMPACT_LOOKBACK_DAYS`). */
  readonly compactLookbackDays: number;
  /** A UTC day is closed once its end is this many hours past (`COMPACT_SETTLE_HOURS`). */
  readonly compactSettleHours: number;
  /** A day still uncompacted this many hours after its end counts in the alarm metric (`COMPACT_ALARM_AFTER_HOURS`). */
  readonly compactAlarmAfterHours: number;
  /** Largest compacted file, in bytes (`COMPACT_MAX_FILE_BYTES`). */
  readonly compactMaxFileBytes: number;
  /** Maintenance function memory in MB (it also sets its CPU share). */
  readonly maintenanceMemorySize: number;
  /** Days after which compacted objects expire: never later than the raw objects they derive from. */
  readonly compactedExpiryDays: number;
  /** E-mail address subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  /** Existing SNS topic that receives the alarms, instead of a new one. */
  readonly alarmTopicArn?: string;
  /** Whether the baseline workflow (export, then a Distributed Map of baseline batches) is deployed. */
  readonly baselineWorkflow: boolean;
  /** The table the baseline workflow exports; by default the table of `streamArn`, or the demo table. */
  readonly baselineTableArn?: string;
  /** Batches of data files archived at the same time by the workflow's Distributed Map (`MaxConcurrency`). */
  readonly baselineMaxConcurrency: number;
  /** Data files of the export per baseline batch (one invocation of the baseline function). */
  readonly baselineFilesPerBatch: number;
  /** Seconds between two `DescribeExport` polls while the export runs. */
  readonly baselinePollSeconds: number;
  /** Days after which exports (and the workflow's run results) expire from the export bucket. */
  readonly baselineExportExpiryDays: number;
}

/** Defaults used when a context key is not given. */
export const DEFAULTS = {
  functionAssetDir: '../target/lambda/ddb-archiver-lambda',
  schemasDir: '../schemas',
  demoTableName: 'invoices',
  format: 'parquet' as ArchiveFormat,
  prefix: 'archive/',
  retentionYears: 7,
  objectLockMode: 'COMPLIANCE' as ObjectLockMode,
  infrequentAccessAfterDays: 30,
  glacierInstantRetrievalAfterDays: 90,
  batchSize: 1000,
  batchingWindowSeconds: 10,
  parallelizationFactor: 1,
  retryAttempts: 10,
  maxRecordAgeSeconds: 86400,
  memorySize: 256,
  timeoutSeconds: 60,
  maxFileBytes: 33554432,
  maxFileRecords: 100000,
  rustLog: 'info',
  databaseName: 'ddb_archive',
  athenaResultsExpiryDays: 30,
  compactSchedule: 'cron(30 2 * * ? *)',
  verifySchedule: 'cron(0 4 ? * SUN *)',
  compactLookbackDays: 7,
  compactSettleHours: 26,
  compactAlarmAfterHours: 74,
  compactMaxFileBytes: 268435456,
  maintenanceMemorySize: 3008,
  baselineWorkflow: false,
  baselineMaxConcurrency: 10,
  baselineFilesPerBatch: 1,
  baselinePollSeconds: 60,
  baselineExportExpiryDays: 14,
} as const;

/**
 * Days after which archived (raw) objects expire: one 366-day year per retention year, so
 * the expiry is always after the Object Lock retention ends (which counts calendar years).
 */
export function expiryDays(retentionYears: number): number {
  return retentionYears * 366;
}

/**
 * The latest expiry of compacted objects. A day's compacted objects are written (again)
 * only while the day is in the lookback window, at most `lookbackDays + 2` days after the
 * day's first raw objects; expiring that much sooner than the raw archive, a compacted copy
 * never outlives the raw objects it was made from.
 */
export function latestCompactedExpiryDays(retentionYears: number, lookbackDays: number): number {
  return expiryDays(retentionYears) - lookbackDays - 2;
}

/** A configuration error: names the context key and what is wrong with its value. */
export class ConfigError extends Error {
  constructor(key: string, message: string) {
    super(`context "${key}": ${message}`);
    this.name = 'ConfigError';
  }
}

/** Context values arrive as strings from `-c key=value` and as JSON values from cdk.json. */
type Raw = unknown;

function str(key: string, raw: Raw): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new ConfigError(key, `expected a string, got ${JSON.stringify(raw)}`);
  return raw;
}

function int(key: string, raw: Raw, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(key, `expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function list(key: string, raw: Raw): string[] {
  if (raw === undefined || raw === null || raw === '') return [];
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return raw as string[];
  if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  throw new ConfigError(key, `expected a comma-separated list, got ${JSON.stringify(raw)}`);
}

function bool(key: string, raw: Raw, fallback: boolean): boolean {
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new ConfigError(key, `expected true or false, got ${JSON.stringify(raw)}`);
}

/** An EventBridge schedule expression: `cron(…)` with six fields, or `rate(…)`. */
function schedule(key: string, raw: Raw, fallback: string): string {
  const v = str(key, raw) ?? fallback;
  if (!/^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$/.test(v)) {
    throw new ConfigError(key, `expected an EventBridge schedule, cron(…) with six fields or rate(…), got "${v}"`);
  }
  return v;
}

/** DynamoDB table names: 3 to 255 characters of letters, digits, `_`, `-` and `.`. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Reads and checks the configuration; `get` returns a context value (or undefined). */
export function readConfig(get: (key: string) => Raw): ArchiverConfig {
  const format = str('format', get('format')) ?? DEFAULTS.format;
  if (format !== 'parquet' && format !== 'jsonl.gz') {
    throw new ConfigError('format', `expected parquet or jsonl.gz, got "${format}"`);
  }
  // An empty prefix is meaningful (the bucket's root), unlike other empty values.
  const prefix = get('prefix') === '' ? '' : (str('prefix', get('prefix')) ?? DEFAULTS.prefix);
  if (prefix !== '' && !/^[A-Za-z0-9!_.*'()=-]+(\/[A-Za-z0-9!_.*'()=-]+)*\/$/.test(prefix)) {
    throw new ConfigError('prefix', `expected an S3 key prefix ending with "/" (or empty), got "${prefix}"`);
  }
  const lockRaw = (str('objectLockMode', get('objectLockMode')) ?? DEFAULTS.objectLockMode).toUpperCase();
  if (lockRaw !== 'COMPLIANCE' && lockRaw !== 'GOVERNANCE' && lockRaw !== 'OFF') {
    throw new ConfigError('objectLockMode', `expected COMPLIANCE, GOVERNANCE or OFF, got "${lockRaw}"`);
  }
  const streamArn = str('streamArn', get('streamArn'));
  if (streamArn !== undefined && !/^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]+\/stream\/.+$/.test(streamArn)) {
    throw new ConfigError('streamArn', `expected a DynamoDB stream ARN, got "${streamArn}"`);
  }
  const kinesisStreamArn = str('kinesisStreamArn', get('kinesisStreamArn'));
  if (kinesisStreamArn !== undefined && !/^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/[A-Za-z0-9_.-]+$/.test(kinesisStreamArn)) {
    throw new ConfigError('kinesisStreamArn', `expected a Kinesis stream ARN, got "${kinesisStreamArn}"`);
  }
  if (streamArn !== undefined && kinesisStreamArn !== undefined) {
    throw new ConfigError('kinesisStreamArn', 'give either streamArn or kinesisStreamArn, not both');
  }
  const kinesisKeyArn = str('kinesisKeyArn', get('kinesisKeyArn'));
  if (kinesisKeyArn !== undefined && kinesisStreamArn === undefined) {
    throw new ConfigError('kinesisKeyArn', 'only meaningful with kinesisStreamArn');
  }
  const demoTableName = str('demoTableName', get('demoTableName')) ?? DEFAULTS.demoTableName;
  const standardTables = list('standardTables', get('standardTables'));
  for (const t of [demoTableName, ...standardTables]) {
    if (!TABLE_NAME.test(t)) throw new ConfigError('standardTables', `"${t}" is not a DynamoDB table name`);
  }
  const databaseName = str('databaseName', get('databaseName')) ?? DEFAULTS.databaseName;
  if (!/^[a-z0-9_]{1,255}$/.test(databaseName)) {
    throw new ConfigError('databaseName', `expected lowercase letters, digits and "_", got "${databaseName}"`);
  }
  const ia = int('infrequentAccessAfterDays', get('infrequentAccessAfterDays'), DEFAULTS.infrequentAccessAfterDays, 30, 36500);
  const gir = int(
    'glacierInstantRetrievalAfterDays',
    get('glacierInstantRetrievalAfterDays'),
    DEFAULTS.glacierInstantRetrievalAfterDays,
    ia + 30,
    36500,
  );
  const retentionYears = int('retentionYears', get('retentionYears'), DEFAULTS.retentionYears, 1, 100);
  if (gir >= retentionYears * 365) {
    throw new ConfigError('glacierInstantRetrievalAfterDays', 'must be before the end of the retention period');
  }
  const alarmEmail = str('alarmEmail', get('alarmEmail'));
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) {
    throw new ConfigError('alarmEmail', `expected an e-mail address, got "${alarmEmail}"`);
  }
  const alarmTopicArn = str('alarmTopicArn', get('alarmTopicArn'));
  if (alarmTopicArn !== undefined && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?$/.test(alarmTopicArn)) {
    throw new ConfigError('alarmTopicArn', `expected an SNS topic ARN, got "${alarmTopicArn}"`);
  }
  // The stream keeps records 24 hours: a day is not closed before that has passed.
  const compactSettleHours = int('compactSettleHours', get('compactSettleHours'), DEFAULTS.compactSettleHours, 24, 168);
  const compactLookbackDays = int('compactLookbackDays', get('compactLookbackDays'), DEFAULTS.compactLookbackDays, 2, 90);
  // Counted only while the day is still in the lookback window, and after it could be compacted.
  const compactAlarmAfterHours = int(
    'compactAlarmAfterHours',
    get('compactAlarmAfterHours'),
    DEFAULTS.compactAlarmAfterHours,
    compactSettleHours + 1,
    compactLookbackDays * 24,
  );
  const latestExpiry = latestCompactedExpiryDays(retentionYears, compactLookbackDays);
  const compactedExpiryDays = int('compactedExpiryDays', get('compactedExpiryDays'), latestExpiry, 1, latestExpiry);
  const baselineWorkflow = bool('baselineWorkflow', get('baselineWorkflow'), DEFAULTS.baselineWorkflow);
  const baselineTableArn = str('baselineTableArn', get('baselineTableArn'));
  if (baselineTableArn !== undefined && !/^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255}$/.test(baselineTableArn)) {
    throw new ConfigError('baselineTableArn', `expected a DynamoDB table ARN, got "${baselineTableArn}"`);
  }
  if (baselineTableArn !== undefined && !baselineWorkflow) {
    throw new ConfigError('baselineTableArn', 'only meaningful with baselineWorkflow=true');
  }
  if (baselineWorkflow && baselineTableArn === undefined && kinesisStreamArn !== undefined) {
    throw new ConfigError('baselineTableArn', 'required with baselineWorkflow=true and a Kinesis stream (the table is not known)');
  }
  const timeoutSeconds = int('timeoutSeconds', get('timeoutSeconds'), DEFAULTS.timeoutSeconds, 1, 900);
  return {
    functionAssetDir: str('functionAssetDir', get('functionAssetDir')) ?? DEFAULTS.functionAssetDir,
    schemasDir: str('schemasDir', get('schemasDir')) ?? DEFAULTS.schemasDir,
    streamArn,
    kinesisStreamArn,
    kinesisKeyArn,
    demoTableName,
    standardTables,
    format,
    prefix,
    retentionYears,
    objectLockMode: lockRaw,
    infrequentAccessAfterDays: ia,
    glacierInstantRetrievalAfterDays: gir,
    batchSize: int('batchSize', get('batchSize'), DEFAULTS.batchSize, 1, 10000),
    batchingWindowSeconds: int('batchingWindowSeconds', get('batchingWindowSeconds'), DEFAULTS.batchingWindowSeconds, 0, 300),
    parallelizationFactor: int('parallelizationFactor', get('parallelizationFactor'), DEFAULTS.parallelizationFactor, 1, 10),
    retryAttempts: int('retryAttempts', get('retryAttempts'), DEFAULTS.retryAttempts, 0, 10000),
    maxRecordAgeSeconds: int('maxRecordAgeSeconds', get('maxRecordAgeSeconds'), DEFAULTS.maxRecordAgeSeconds, 60, 604800),
    memorySize: int('memorySize', get('memorySize'), DEFAULTS.memorySize, 128, 10240),
    timeoutSeconds,
    maxFileBytes: int('maxFileBytes', get('maxFileBytes'), DEFAULTS.maxFileBytes, 1, Number.MAX_SAFE_INTEGER),
    maxFileRecords: int('maxFileRecords', get('maxFileRecords'), DEFAULTS.maxFileRecords, 1, Number.MAX_SAFE_INTEGER),
    rustLog: str('rustLog', get('rustLog')) ?? DEFAULTS.rustLog,
    databaseName,
    athenaResultsExpiryDays: int('athenaResultsExpiryDays', get('athenaResultsExpiryDays'), DEFAULTS.athenaResultsExpiryDays, 1, 3650),
    compactSchedule: schedule('compactSchedule', get('compactSchedule'), DEFAULTS.compactSchedule),
    verifySchedule: schedule('verifySchedule', get('verifySchedule'), DEFAULTS.verifySchedule),
    compactLookbackDays,
    compactSettleHours,
    compactAlarmAfterHours,
    compactMaxFileBytes: int('compactMaxFileBytes', get('compactMaxFileBytes'), DEFAULTS.compactMaxFileBytes, 1, Number.MAX_SAFE_INTEGER),
    maintenanceMemorySize: int('maintenanceMemorySize', get('maintenanceMemorySize'), DEFAULTS.maintenanceMemorySize, 128, 10240),
    compactedExpiryDays,
    alarmEmail,
    alarmTopicArn,
    baselineWorkflow,
    baselineTableArn,
    baselineMaxConcurrency: int('baselineMaxConcurrency', get('baselineMaxConcurrency'), DEFAULTS.baselineMaxConcurrency, 1, 1000),
    baselineFilesPerBatch: int('baselineFilesPerBatch', get('baselineFilesPerBatch'), DEFAULTS.baselineFilesPerBatch, 1, 100),
    baselinePollSeconds: int('baselinePollSeconds', get('baselinePollSeconds'), DEFAULTS.baselinePollSeconds, 10, 3600),
    baselineExportExpiryDays: int('baselineExportExpiryDays', get('baselineExportExpiryDays'), DEFAULTS.baselineExportExpiryDays, 1, 3650),
  };
}

/** Reads the configuration from a construct's context (the app's `-c` values and cdk.json). */
export function configFromContext(node: Node): ArchiverConfig {
  return readConfig((key) => node.tryGetContext(key));
}

/** The ARN of the table whose DynamoDB stream ARN this is (`…:table/NAME`). */
export function tableArnFromStreamArn(arn: string): string {
  const i = arn.indexOf('/stream/');
  if (i < 0) throw new ConfigError('streamArn', `no table in "${arn}"`);
  return arn.slice(0, i);
}

/** The source table named by a DynamoDB stream ARN (`…:table/NAME/stream/…`). */
export function tableFromStreamArn(arn: string): string {
  const m = /:table\/([^/]+)\/stream\//.exec(arn);
  if (m === null || m[1] === undefined) throw new ConfigError('streamArn', `no table name in "${arn}"`);
  return m[1];
}
