/**
 * The maintenance function and its schedules: the same Rust package as the archiver, run
 * with `ARCHIVE_ROLE=maintenance`, compacting closed days of the raw archive into the
 * compacted layer every day and verifying every object every week. It may read the raw
 * archive but never write or delete there; it owns the compacted layer. Reserved
 * concurrency 1: two compactions of the same day never race. A schedule event that cannot
 * be delivered after EventBridge's retries, or whose run still fails after the function's
 * asynchronous retries, goes to an encrypted dead-letter queue.
 */
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { archiveUrl, keyThroughS3, logGroupAndRole, RUST_RUNTIME, SCHEMAS_IN_PACKAGE } from './archiver-function';
import { acknowledge, arnFinding } from './nag';

/** Settings of the maintenance function and its schedules. */
export interface MaintenanceProps {
  /** The function package, shared with the archiver function. */
  readonly code: lambda.Code;
  /** The raw archive bucket (read only). */
  readonly rawBucket: s3.IBucket;
  /** Key prefix of the raw archive (empty or ending with `/`). */
  readonly rawPrefix: string;
  /** The compacted-layer bucket (read, write, delete). */
  readonly compactedBucket: s3.IBucket;
  /** The key of both buckets. */
  readonly key: kms.IKey;
  /** Schedule expression of the daily compaction. */
  readonly compactSchedule: string;
  /** Schedule expression of the weekly verification. */
  readonly verifySchedule: string;
  /** `COMPACT_LOOKBACK_DAYS`. */
  readonly lookbackDays: number;
  /** `COMPACT_SETTLE_HOURS`. */
  readonly settleHours: number;
  /** `COMPACT_ALARM_AFTER_HOURS`. */
  readonly alarmAfterHours: number;
  /** `COMPACT_MAX_FILE_BYTES`. */
  readonly maxFileBytes: number;
  /** Memory in MB. */
  readonly memorySize: number;
  /** `RUST_LOG`. */
  readonly rustLog: string;
}

/** The longest a Lambda function may run; a compaction of a large day needs it. */
export const MAINTENANCE_TIMEOUT = Duration.minutes(15);
/** The most `/tmp` Lambda gives: the external sort spills there. */
export const MAINTENANCE_EPHEMERAL_STORAGE = Size.mebibytes(10240);
/** Retries of a schedule event (delivery by EventBridge, then the run by Lambda) before it goes to the dead-letter queue. */
export const SCHEDULE_RETRY_ATTEMPTS = 2;
/** How long a schedule event is retried (by EventBridge, and by Lambda). */
export const SCHEDULE_MAX_EVENT_AGE = Duration.hours(6);

/** The maintenance function, its schedules and their dead-letter queue. */
export class Maintenance extends Construct {
  /** The function. */
  public readonly function: lambda.Function;
  /** Its log group. */
  public readonly logGroup: logs.LogGroup;
  /** The daily compaction schedule. */
  public readonly compactRule: events.Rule;
  /** The weekly verification schedule. */
  public readonly verifyRule: events.Rule;
  /** Schedule events that could not be delivered after all retries. */
  public readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: MaintenanceProps) {
    super(scope, id);

    const { logGroup, role } = logGroupAndRole(
      this,
      'ddb-archiver maintenance: read the raw archive, write the compacted layer, write its logs',
    );
    this.logGroup = logGroup;
    const rawObjects = props.rawBucket.arnForObjects(`${props.rawPrefix}*`);
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRawArchive',
        // Read only: the raw archive is the evidence; no put, no delete.
        actions: ['s3:GetObject', 's3:GetObjectAttributes', 's3:GetObjectVersionAttributes'],
        resources: [rawObjects],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListRawArchive',
        actions: ['s3:ListBucket'],
        resources: [props.rawBucket.bucketArn],
        conditions: props.rawPrefix === '' ? undefined : { StringLike: { 's3:prefix': `${props.rawPrefix}*` } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteCompactedLayer',
        // A day's files and manifest are replaced when its raw objects change; multipart
        // uploads of large files are aborted when a write fails.
        actions: ['s3:GetObject', 's3:GetObjectAttributes', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [props.compactedBucket.arnForObjects('*')],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListCompactedLayer',
        actions: ['s3:ListBucket'],
        resources: [props.compactedBucket.bucketArn],
      }),
    );
    // Decrypt to read both buckets and complete multipart uploads, GenerateDataKey to write.
    role.addToPolicy(keyThroughS3(this, 'UseArchiveKey', props.key, ['kms:Decrypt', 'kms:GenerateDataKey']));

    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnFinding(props.rawBucket.node.defaultChild as s3.CfnBucket)}/${props.rawPrefix}*]`,
      'Compaction and verification read every object of the raw archive, whose keys are data-dependent; the wildcard is confined to the archive prefix and the actions to reads (no put, no delete).',
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnFinding(props.compactedBucket.node.defaultChild as s3.CfnBucket)}/*]`,
      'The maintenance function owns the compacted layer, a derived copy rebuildable from the raw archive: it writes and replaces files under data-dependent keys (table, day) in that bucket only.',
    );

    this.deadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.function = new lambda.Function(this, 'Function', {
      ...RUST_RUNTIME,
      description: 'ddb-archiver maintenance: compacts closed days and verifies the archive',
      code: props.code,
      memorySize: props.memorySize,
      timeout: MAINTENANCE_TIMEOUT,
      ephemeralStorageSize: MAINTENANCE_EPHEMERAL_STORAGE,
      reservedConcurrentExecutions: 1,
      // Schedules invoke asynchronously: a failed run is retried, then its event kept.
      retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
      maxEventAge: SCHEDULE_MAX_EVENT_AGE,
      deadLetterQueue: this.deadLetterQueue,
      role,
      logGroup: this.logGroup,
      environment: {
        ARCHIVE_ROLE: 'maintenance',
        ARCHIVE_SOURCE: archiveUrl(props.rawBucket, props.rawPrefix),
        COMPACT_DEST: archiveUrl(props.compactedBucket, ''),
        ARCHIVE_SCHEMAS: SCHEMAS_IN_PACKAGE,
        COMPACT_LOOKBACK_DAYS: String(props.lookbackDays),
        COMPACT_SETTLE_HOURS: String(props.settleHours),
        COMPACT_ALARM_AFTER_HOURS: String(props.alarmAfterHours),
        COMPACT_MAX_FILE_BYTES: String(props.maxFileBytes),
        RUST_LOG: props.rustLog,
      },
    });

    const schedule = (ruleId: string, expression: string, action: string, description: string): events.Rule =>
      new events.Rule(this, ruleId, {
        description,
        schedule: events.Schedule.expression(expression),
        targets: [
          new targets.LambdaFunction(this.function, {
            event: events.RuleTargetInput.fromObject({ action }),
            retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
            maxEventAge: SCHEDULE_MAX_EVENT_AGE,
            deadLetterQueue: this.deadLetterQueue,
          }),
        ],
      });
    this.compactRule = schedule('Compact', props.compactSchedule, 'compact', 'ddb-archiver: compact closed days of the archive');
    this.verifyRule = schedule('Verify', props.verifySchedule, 'verify', 'ddb-archiver: verify every archived and compacted object');
  }
}
