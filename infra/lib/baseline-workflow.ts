/**
 * The baseline workflow (optional, context `baselineWorkflow=true`): a Step Functions state
 * machine that archives a table's items from a DynamoDB export, on AWS's own engines, for
 * tables too big for one machine.
 *
 * 1. `ExportTableToPointInTime` into an export bucket of its own: a full export (the
 *    baseline), or an incremental export over a window (gap repair), chosen by the input;
 * 2. `DescribeExport` every `pollSeconds` until the export is COMPLETED (FAILED fails);
 * 3. a Distributed Map over the export's `manifest-files.json` (JSON lines) invokes the
 *    baseline function with `{"action":"baseline","export":…,"files":[…]}` for batches of
 *    data files in parallel;
 * 4. once every batch has succeeded, `{"action":"baseline-complete","export":…}` checks
 *    that every data file's objects are in the archive and writes the coverage record.
 *
 * Every object name is derived from the export and its items, so each retry (of a batch,
 * of the final step, of the whole execution with the same name, which reuses the export
 * through its client token) writes nothing twice.
 *
 * The baseline function is the maintenance function's package and role
 * (`ARCHIVE_ROLE=maintenance`) deployed a second time with a role of its own: it may read
 * the export bucket, read the raw archive and create new objects in it (no delete), so the
 * scheduled maintenance function stays read-only on the raw archive, and batches are not
 * held back by the maintenance function's reserved concurrency of 1.
 */
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { denyOtherEncryption, privateKmsBucket } from './archive-bucket';
import { archiveUrl, logGroupAndRole, keyThroughS3, RUST_RUNTIME, SCHEMAS_IN_PACKAGE } from './archiver-function';
import { ArchiveFormat } from './config';
import { MAINTENANCE_EPHEMERAL_STORAGE, MAINTENANCE_TIMEOUT } from './maintenance';
import { acknowledge, arnFinding } from './nag';

/** Key prefix of the exports in the export bucket (DynamoDB adds `/AWSDynamoDB/<ExportId>/`). */
export const EXPORT_PREFIX = 'exports';
/** Key prefix of the Distributed Map's run results in the export bucket. */
export const RESULTS_PREFIX = 'map-runs';
/** Attempts of a failed baseline batch or final step, after the first. */
export const BASELINE_RETRY_ATTEMPTS = 3;

/** Settings of the baseline workflow. */
export interface BaselineWorkflowProps {
  /** The function package, shared with the other functions. */
  readonly code: lambda.Code;
  /** ARN of the table that is exported (point-in-time recovery must be enabled on it). */
  readonly tableArn: string;
  /** The raw archive bucket, where baseline objects and coverage records are created. */
  readonly rawBucket: s3.IBucket;
  /** Key prefix of the raw archive (empty or ending with `/`). */
  readonly rawPrefix: string;
  /** The compacted-layer bucket (named in the package's settings; never accessed). */
  readonly compactedBucket: s3.IBucket;
  /** The archive key: encrypts the export bucket too. */
  readonly key: kms.IKey;
  /** The bucket receiving server access logs. */
  readonly accessLogs: s3.IBucket;
  /** Format of the archive (`ARCHIVE_FORMAT`). */
  readonly format: ArchiveFormat;
  /** Batches archived at the same time (`MaxConcurrency` of the Distributed Map). */
  readonly maxConcurrency: number;
  /** Data files per batch (`MaxItemsPerBatch`). */
  readonly filesPerBatch: number;
  /** Seconds between `DescribeExport` polls. */
  readonly pollSeconds: number;
  /** Days after which exports and run results expire from the export bucket. */
  readonly exportExpiryDays: number;
  /** Memory of the baseline function in MB. */
  readonly memorySize: number;
  /** `RUST_LOG`. */
  readonly rustLog: string;
}

/** The export bucket, the baseline function and the state machine. */
export class BaselineWorkflow extends Construct {
  /** Where DynamoDB writes the exports (and the map writes its run results). */
  public readonly exportBucket: s3.Bucket;
  /** The baseline function (`ARCHIVE_ROLE=maintenance`). */
  public readonly function: lambda.Function;
  /** Its log group. */
  public readonly logGroup: logs.LogGroup;
  /** The state machine. */
  public readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: BaselineWorkflowProps) {
    super(scope, id);
    // The Distributed Map's ResultWriter in its current form (set before any state is made).
    this.node.setContext('@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2', true);

    this.exportBucket = new s3.Bucket(this, 'ExportBucket', {
      ...privateKmsBucket(props.key, props.accessLogs, 'export-bucket/'),
      lifecycleRules: [
        {
          // Exports are a staging copy: once archived, the archive holds every item.
          id: 'exports-expire',
          expiration: Duration.days(props.exportExpiryDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    denyOtherEncryption(this.exportBucket);
    const exportsUrl = archiveUrl(this.exportBucket, `${EXPORT_PREFIX}/`);

    // The baseline function.
    const { logGroup, role } = logGroupAndRole(
      this,
      'ddb-archiver baseline: read DynamoDB exports, create baseline objects and coverage records in the raw archive, write its logs',
    );
    this.logGroup = logGroup;
    const exportObjects = this.exportBucket.arnForObjects(`${EXPORT_PREFIX}/*`);
    const rawObjects = props.rawBucket.arnForObjects(`${props.rawPrefix}*`);
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadExportsWriteNotes',
        // Reads the manifests and data files; each batch leaves a note of the objects of its
        // data files (create-only) in the export's folder, which the final step reads.
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [exportObjects],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadAndCreateArchiveObjects',
        // Create-only puts (If-None-Match: *) and reads to check what is present. No delete.
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
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
    role.addToPolicy(keyThroughS3(this, 'UseArchiveKey', props.key, ['kms:Decrypt', 'kms:GenerateDataKey']));
    role.addToPolicy(
      new iam.PolicyStatement({
        // A full export's lines are whole items: the key schema says which attributes are the key.
        sid: 'ReadKeySchema',
        actions: ['dynamodb:DescribeTable'],
        resources: [props.tableArn],
      }),
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnFinding(this.exportBucket.node.defaultChild as s3.CfnBucket)}/${EXPORT_PREFIX}/*]`,
      'A baseline batch reads the data files an export names, under keys DynamoDB chooses (export ID, file name), and leaves a note per data file in that export\'s folder; the wildcard is confined to the exports prefix of the workflow\'s own bucket, and the actions to get and put.',
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnFinding(props.rawBucket.node.defaultChild as s3.CfnBucket)}/${props.rawPrefix}*]`,
      'A baseline creates objects under new, data-dependent keys (table, day, digest) and a coverage record under the archive prefix, and reads them back to check the export is archived in full; no delete, and Object Lock keeps what exists.',
    );

    this.function = new lambda.Function(this, 'Function', {
      ...RUST_RUNTIME,
      description: 'ddb-archiver baseline: archives batches of a DynamoDB export and records its coverage',
      code: props.code,
      memorySize: props.memorySize,
      timeout: MAINTENANCE_TIMEOUT,
      ephemeralStorageSize: MAINTENANCE_EPHEMERAL_STORAGE,
      // Invoked synchronously by the state machine, which retries; never asynchronously.
      retryAttempts: 0,
      role,
      logGroup: this.logGroup,
      environment: {
        ARCHIVE_ROLE: 'maintenance',
        ARCHIVE_SOURCE: archiveUrl(props.rawBucket, props.rawPrefix),
        COMPACT_DEST: archiveUrl(props.compactedBucket, ''),
        ARCHIVE_SCHEMAS: SCHEMAS_IN_PACKAGE,
        ARCHIVE_FORMAT: props.format,
        ARCHIVE_KMS_KEY_ID: props.key.keyArn,
        BASELINE_EXPORTS: exportsUrl,
        RUST_LOG: props.rustLog,
      },
    });

    this.stateMachine = this.buildStateMachine(props, exportsUrl);
  }

  private buildStateMachine(props: BaselineWorkflowProps, exportsUrl: string): sfn.StateMachine {
    const exportParameters = {
      TableArn: props.tableArn,
      S3Bucket: this.exportBucket.bucketName,
      S3Prefix: EXPORT_PREFIX,
      S3SseAlgorithm: 'KMS',
      S3SseKmsKeyId: props.key.keyArn,
      ExportFormat: 'DYNAMODB_JSON',
      // Idempotent: a retry of the task, or a rerun under the same execution name within
      // 8 hours, gets the same export instead of a second one.
      ClientToken: sfn.JsonPath.executionName,
    };
    const exportResult = { exportArn: sfn.JsonPath.stringAt('$.ExportDescription.ExportArn') };
    const exportTask = (id: string, extra: Record<string, unknown>): tasks.CallAwsService =>
      new tasks.CallAwsService(this, id, {
        service: 'dynamodb',
        action: 'exportTableToPointInTime',
        iamAction: 'dynamodb:ExportTableToPointInTime',
        iamResources: [props.tableArn],
        parameters: { ...exportParameters, ...extra },
        resultSelector: exportResult,
        resultPath: '$.export',
      });
    const fullExport = exportTask('FullExport', { ExportType: 'FULL_EXPORT' });
    const incrementalExport = exportTask('IncrementalExport', {
      ExportType: 'INCREMENTAL_EXPORT',
      IncrementalExportSpecification: {
        ExportFromTime: sfn.JsonPath.stringAt('$.from'),
        ExportToTime: sfn.JsonPath.stringAt('$.to'),
        ExportViewType: 'NEW_AND_OLD_IMAGES',
      },
    });

    const wait = new sfn.Wait(this, 'WaitForExport', { time: sfn.WaitTime.duration(Duration.seconds(props.pollSeconds)) });
    const describe = new tasks.CallAwsService(this, 'DescribeExport', {
      service: 'dynamodb',
      action: 'describeExport',
      iamAction: 'dynamodb:DescribeExport',
      iamResources: [`${props.tableArn}/export/*`],
      parameters: { ExportArn: sfn.JsonPath.stringAt('$.export.exportArn') },
      resultSelector: { status: sfn.JsonPath.stringAt('$.ExportDescription.ExportStatus') },
      resultPath: '$.describe',
    });
    const exportFailed = new sfn.Fail(this, 'ExportFailed', {
      error: 'ExportFailed',
      causePath: sfn.JsonPath.format('DynamoDB export {} FAILED (see DescribeExport for the reason)', sfn.JsonPath.stringAt('$.export.exportArn')),
    });

    // `…:table/NAME/export/ID` → ID, and the export's folder under the exports prefix.
    const locate = new sfn.Pass(this, 'LocateExport', {
      parameters: {
        id: sfn.JsonPath.arrayGetItem(sfn.JsonPath.stringSplit(sfn.JsonPath.stringAt('$.export.exportArn'), '/'), 3),
      },
      resultPath: '$.located',
    });
    const paths = new sfn.Pass(this, 'ExportPaths', {
      parameters: {
        url: sfn.JsonPath.format(`${exportsUrl}AWSDynamoDB/{}/`, sfn.JsonPath.stringAt('$.located.id')),
        filesKey: sfn.JsonPath.format(`${EXPORT_PREFIX}/AWSDynamoDB/{}/manifest-files.json`, sfn.JsonPath.stringAt('$.located.id')),
      },
      resultPath: '$.paths',
    });

    const retry = (task: sfn.TaskStateBase): void => {
      task.addRetry({
        errors: [sfn.Errors.TASKS_FAILED],
        interval: Duration.seconds(30),
        backoffRate: 2,
        maxAttempts: BASELINE_RETRY_ATTEMPTS,
      });
    };
    const batch = new tasks.LambdaInvoke(this, 'ArchiveBatch', {
      lambdaFunction: this.function,
      payload: sfn.TaskInput.fromObject({
        action: 'baseline',
        export: sfn.JsonPath.stringAt('$.Items[0].export'),
        files: sfn.JsonPath.listAt('$.Items[*].file'),
      }),
      payloadResponseOnly: true,
    });
    retry(batch);
    const map = new sfn.DistributedMap(this, 'ArchiveDataFiles', {
      itemReader: new ExportFileList({
        bucket: this.exportBucket,
        key: sfn.JsonPath.stringAt('$.paths.filesKey'),
      }),
      // Each manifest-files.json line, with the export's folder (`$` is the map's input).
      itemSelector: {
        export: sfn.JsonPath.stringAt('$.paths.url'),
        file: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
      },
      itemBatcher: new sfn.ItemBatcher({ maxItemsPerBatch: props.filesPerBatch }),
      maxConcurrency: props.maxConcurrency,
      toleratedFailurePercentage: 0,
      resultWriterV2: new MapRunResults({ bucket: this.exportBucket, prefix: RESULTS_PREFIX }),
      resultPath: '$.mapRun',
    });
    map.itemProcessor(batch);

    const complete = new tasks.LambdaInvoke(this, 'RecordCoverage', {
      lambdaFunction: this.function,
      payload: sfn.TaskInput.fromObject({ action: 'baseline-complete', export: sfn.JsonPath.stringAt('$.paths.url') }),
      payloadResponseOnly: true,
      resultPath: '$.coverage',
    });
    retry(complete);

    const badInput = new sfn.Fail(this, 'InvalidInput', {
      error: 'InvalidInput',
      cause:
        'expected {"exportType":"FULL_EXPORT"} (or {}) for a baseline, or ' +
        '{"exportType":"INCREMENTAL_EXPORT","from":"<ISO 8601 time>","to":"<ISO 8601 time>"} for gap repair',
    });
    const polling = wait.next(describe).next(
      new sfn.Choice(this, 'ExportDone')
        .when(sfn.Condition.stringEquals('$.describe.status', 'COMPLETED'), locate.next(paths).next(map).next(complete))
        .when(sfn.Condition.stringEquals('$.describe.status', 'FAILED'), exportFailed)
        .otherwise(wait),
    );
    fullExport.next(polling);
    incrementalExport.next(wait);
    const start = new sfn.Choice(this, 'ExportType')
      .when(
        sfn.Condition.or(
          sfn.Condition.isNotPresent('$.exportType'),
          sfn.Condition.stringEquals('$.exportType', 'FULL_EXPORT'),
        ),
        fullExport,
      )
      .when(
        sfn.Condition.and(
          sfn.Condition.stringEquals('$.exportType', 'INCREMENTAL_EXPORT'),
          sfn.Condition.isTimestamp('$.from'),
          sfn.Condition.isTimestamp('$.to'),
        ),
        incrementalExport,
      )
      .otherwise(badInput);

    const smLogs = new logs.LogGroup(this, 'StateMachineLogs', { retention: logs.RetentionDays.ONE_YEAR });
    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'ddb-archiver baseline: export a DynamoDB table, archive its items in parallel, record the coverage',
      definitionBody: sfn.DefinitionBody.fromChainable(start),
      logs: { destination: smLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });

    // DynamoDB writes the export with the caller's permissions, encrypted with the key.
    stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteExports',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:PutObjectAcl'],
        resources: [this.exportBucket.arnForObjects(`${EXPORT_PREFIX}/*`)],
      }),
    );
    stateMachine.addToRolePolicy(keyThroughS3(this, 'EncryptExports', props.key, ['kms:GenerateDataKey', 'kms:Decrypt']));

    const smRole = stateMachine.role;
    const exportBucketArn = arnFinding(this.exportBucket.node.defaultChild as s3.CfnBucket);
    acknowledge(
      smRole,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray tracing (PutTraceSegments, PutTelemetryRecords, sampling rules) and CloudWatch Logs delivery of the state machine are account-level actions without a resource to scope them to; CDK adds exactly these.',
    );
    acknowledge(
      smRole,
      `AwsSolutions-IAM5[Resource::${exportBucketArn}/${EXPORT_PREFIX}/*]`,
      'DynamoDB writes each export under keys it chooses (export ID, data file names) in the exports prefix of the workflow\'s own bucket, with the caller\'s permissions; the map reads the export\'s manifest-files.json there.',
    );
    acknowledge(
      smRole,
      `AwsSolutions-IAM5[Resource::${exportBucketArn}/${RESULTS_PREFIX}/*]`,
      'The Distributed Map writes its run results under keys it chooses (map run ID) in the results prefix of the workflow\'s own bucket.',
    );
    acknowledge(
      smRole,
      `AwsSolutions-IAM5[Resource::${tableFinding(props.tableArn, this)}/export/*]`,
      'DescribeExport is allowed on the exports of the one table only; export IDs are chosen by DynamoDB when the export starts.',
    );
    acknowledge(
      smRole,
      `AwsSolutions-IAM5[Resource::${arnFinding(this.function.node.defaultChild as lambda.CfnFunction)}:*]`,
      'Invoking the one baseline function by any version or alias (CDK grants the function ARN with and without a qualifier).',
    );
    acknowledge(
      stateMachine,
`AwsSolutions-IAM5[Resource::${executionsFinding(stateMachine)}:*]`,
      'The Distributed Map describes and stops the child executions of this state machine, whose names Step Functions chooses.',
    );
    acknowledge(
      stateMachine,
`AwsSolutions-IAM5[Resource::${executionsFinding(stateMachine)}/*:*]`,
      'Redriving a Distributed Map run re-drives the child executions of this state machine, whose names Step Functions chooses.',
    );
    return stateMachine;
  }
}

/**
 * The Distributed Map's reader of `manifest-files.json` (JSON lines), granted reads under
 * the exports prefix only (CDK's own reader grants the whole bucket).
 */
class ExportFileList extends sfn.S3JsonLItemReader {
  public providePolicyStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        sid: 'ReadDataFileList',
        actions: ['s3:GetObject'],
        resources: [this.bucket.arnForObjects(`${EXPORT_PREFIX}/*`)],
      }),
    ];
  }
}

/** The Distributed Map's run results, granted writes under the results prefix only. */
class MapRunResults extends sfn.ResultWriterV2 {
  public providePolicyStatements(): iam.PolicyStatement[] {
    if (this.bucket === undefined) throw new Error('MapRunResults needs a bucket');
    return [
      new iam.PolicyStatement({
        sid: 'WriteMapRunResults',
        actions: ['s3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${RESULTS_PREFIX}/*`)],
      }),
    ];
  }
}

/**
 * How cdk-nag names a table ARN in IAM5 findings: the literal ARN when configured, or
 * `<LogicalId.Arn>` for a table made in the stack.
 */
function tableFinding(tableArn: string, scope: Construct): string {
  if (!Token.isUnresolved(tableArn)) return tableArn;
  const resolved = Stack.of(scope).resolve(tableArn) as { 'Fn::GetAtt'?: [string, string] };
  const getAtt = resolved['Fn::GetAtt'];
  if (getAtt === undefined) throw new Error('baseline workflow: the table ARN is neither literal nor a table of the stack');
  return `<${getAtt[0]}.${getAtt[1]}>`;
}

/** How cdk-nag names the ARN of a state machine's executions (`…:execution:<name>`) in IAM5 findings. */
function executionsFinding(stateMachine: sfn.StateMachine): string {
  const stack = Stack.of(stateMachine);
  const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
  const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
  const id = stack.resolve((stateMachine.node.defaultChild as sfn.CfnStateMachine).logicalId) as string;
  return `arn:<AWS::Partition>:states:${region}:${account}:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${id}"}]}]}`;
}
