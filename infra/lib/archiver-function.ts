/**
 * The archiver function: the Rust `ddb-archiver-lambda` binary built by
 * `cargo lambda build --release --arm64`, bundled with the table schema files, on
 * `provided.al2023` / arm64, configured through environment variables, with a role that
 * may only put objects under the archive prefix (no delete, no `s3:*`) and use the key.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ArchiveFormat } from './config';
import { acknowledge, arnFinding } from './nag';

/** Where the schema files are found inside the function package. */
export const SCHEMAS_IN_PACKAGE = '/var/task/schemas';

/** Settings of the archiver function. */
export interface ArchiverFunctionProps {
  /** The function package (`functionPackage`), shared with the maintenance function. */
  readonly code: lambda.Code;
  /** The archive bucket. */
  readonly bucket: s3.IBucket;
  /** The archive bucket's key. */
  readonly key: kms.IKey;
  /** Key prefix inside the bucket (empty or ending with `/`). */
  readonly prefix: string;
  /** Output format. */
  readonly format: ArchiveFormat;
  /** Memory in MB (chosen from the benchmark). */
  readonly memorySize: number;
  /** Timeout in seconds (chosen from the benchmark). */
  readonly timeoutSeconds: number;
  /** `ARCHIVE_MAX_FILE_BYTES`. */
  readonly maxFileBytes: number;
  /** `ARCHIVE_MAX_FILE_RECORDS`. */
  readonly maxFileRecords: number;
  /** `RUST_LOG`. */
  readonly rustLog: string;
}

/** Staging directories to remove when the process exits. */
const staged = new Set<string>();

/** Synthesis copies the asset into the cloud assembly; the staging copy goes at exit. */
function removeAtExit(dir: string): void {
  if (staged.size === 0) {
    process.once('exit', () => {
      for (const d of staged) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  staged.add(dir);
}

/**
 * Copies `bootstrap` and the schema files into a fresh directory laid out as the function
 * package (`bootstrap`, `schemas/*.json`) and returns it. Fails naming the missing file
 * when the function has not been built.
 */
export function stagePackage(functionAssetDir: string, schemaFiles: readonly string[]): string {
  const bootstrap = path.join(functionAssetDir, 'bootstrap');
  if (!fs.existsSync(bootstrap)) {
    throw new Error(
      `${path.resolve(bootstrap)} does not exist: build the function first ` +
        '(cargo lambda build --release --arm64), or set context functionAssetDir',
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddb-archiver-function-'));
  removeAtExit(dir);
  fs.copyFileSync(bootstrap, path.join(dir, 'bootstrap'));
  fs.chmodSync(path.join(dir, 'bootstrap'), 0o755);
  fs.mkdirSync(path.join(dir, 'schemas'));
  for (const file of schemaFiles) {
    fs.copyFileSync(file, path.join(dir, 'schemas', path.basename(file)));
  }
  return dir;
}

/** The package of both functions: the built `bootstrap` and the schema files, staged once. */
export function functionPackage(functionAssetDir: string, schemaFiles: readonly string[]): lambda.Code {
  return lambda.Code.fromAsset(stagePackage(functionAssetDir, schemaFiles));
}

/** How both functions run the Rust binary: `provided.al2023` on arm64. */
export const RUST_RUNTIME = {
  runtime: lambda.Runtime.PROVIDED_AL2023,
  architecture: lambda.Architecture.ARM_64,
  handler: 'bootstrap',
} as const;

/**
 * A function's log group (kept one year, and when the stack is deleted) and a role of its
 * own, so that nothing but the statements added to it is granted (no AWS managed policy
 * with a wildcard resource): to begin with, writing to that log group only.
 */
export function logGroupAndRole(scope: Construct, description: string): { logGroup: logs.LogGroup; role: iam.Role } {
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    retention: logs.RetentionDays.ONE_YEAR,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description,
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'WriteLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }),
  );
  return { logGroup, role };
}

/** Use of the key through S3 only (SSE-KMS of the objects a function reads or writes). */
export function keyThroughS3(scope: Construct, sid: string, key: kms.IKey, actions: string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions,
    resources: [key.keyArn],
    conditions: {
      StringEquals: { 'kms:ViaService': `s3.${Stack.of(scope).region}.amazonaws.com` },
    },
  });
}

/** The archiver Lambda function and its log group. */
export class ArchiverFunction extends Construct {
  /** The function. */
  public readonly function: lambda.Function;
  /** Its log group. */
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ArchiverFunctionProps) {
    super(scope, id);

    const { logGroup, role } = logGroupAndRole(
      this,
      'ddb-archiver function: read the stream, put archive objects, write its logs',
    );
    this.logGroup = logGroup;
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PutArchiveObjects',
        // Conditional single puts (If-None-Match: *) and multipart uploads. No delete, no read.
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: [props.bucket.arnForObjects(`${props.prefix}*`)],
      }),
    );
    // GenerateDataKey for each object, Decrypt to complete multipart uploads.
    role.addToPolicy(keyThroughS3(this, 'EncryptArchiveObjects', props.key, ['kms:GenerateDataKey', 'kms:Decrypt']));

    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnFinding(props.bucket.node.defaultChild as s3.CfnBucket)}/${props.prefix}*]`,
      'The archiver writes objects under new, data-dependent keys (table, event day, sequence numbers); the wildcard is confined to the archive prefix and the actions to puts (no read, no delete).',
    );

    this.function = new lambda.Function(this, 'Function', {
      ...RUST_RUNTIME,
      description: 'ddb-archiver: archives DynamoDB changes to S3',
      code: props.code,
      memorySize: props.memorySize,
      timeout: Duration.seconds(props.timeoutSeconds),
      role,
      logGroup: this.logGroup,
      environment: {
        ARCHIVE_DEST: archiveUrl(props.bucket, props.prefix),
        ARCHIVE_FORMAT: props.format,
        ARCHIVE_SCHEMAS: SCHEMAS_IN_PACKAGE,
        ARCHIVE_KMS_KEY_ID: props.key.keyArn,
        ARCHIVE_MAX_FILE_BYTES: String(props.maxFileBytes),
        ARCHIVE_MAX_FILE_RECORDS: String(props.maxFileRecords),
        RUST_LOG: props.rustLog,
      },
    });
  }
}

/** `s3://<bucket>/<prefix>`: where the archiver writes and the maintenance function reads. */
export function archiveUrl(bucket: s3.IBucket, prefix: string): string {
  return `s3://${bucket.bucketName}/${prefix}`;
}
