/** The function (package, runtime, environment, least-privilege role) and the stream mapping. */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, it } from 'node:test';
import { stagePackage } from '../lib/archiver-function';
import { actionsOf, archiveBucketId, build, Built, FIXTURE_SCHEMAS, functionStatements, idOf, only, resourcesOf } from './helpers';

const defaults = build();
const KINESIS = 'arn:aws:kinesis:eu-west-1:123456789012:stream/changes';
const KINESIS_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const STREAM = 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders-Prod/stream/2026-01-01T00:00:00.000';

function archiverFunction(b: Built): any {
  return b.json.Resources[idOf(b, b.stack.archiver.function)]!.Properties;
}

describe('function package', () => {
  it('holds bootstrap and the schema files', () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'fn-'));
    fs.writeFileSync(path.join(src, 'bootstrap'), 'binary');
    const dir = stagePackage(src, [path.join(FIXTURE_SCHEMAS, 'invoices.json')]);
    assert.equal(fs.readFileSync(path.join(dir, 'bootstrap'), 'utf8'), 'binary');
    assert.ok((fs.statSync(path.join(dir, 'bootstrap')).mode & 0o111) !== 0, 'bootstrap is executable');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'schemas')), ['invoices.json']);
  });

  it('names the missing binary and how to build it', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'fn-'));
    assert.throws(() => stagePackage(empty, []), /bootstrap does not exist: build the function first \(cargo lambda build --release --arm64\)/);
    assert.throws(() => build({ functionAssetDir: empty }), /cargo lambda build --release --arm64/);
  });
});

describe('archiver function', () => {
  it('runs the Rust binary on provided.al2023, arm64, with the benchmark memory and timeout', () => {
    const f = archiverFunction(defaults);
    assert.equal(f.Runtime, 'provided.al2023');
    assert.deepEqual(f.Architectures, ['arm64']);
    assert.equal(f.Handler, 'bootstrap');
    assert.equal(f.MemorySize, 256);
    assert.equal(f.Timeout, 60);
    const other = archiverFunction(build({ memorySize: '512', timeoutSeconds: '120' }));
    assert.equal(other.MemorySize, 512);
    assert.equal(other.Timeout, 120);
  });

  it('is configured by the environment variables of the contract', () => {
    const env = archiverFunction(defaults).Environment.Variables;
    const keyId = defaults.stack.resolve((defaults.stack.archive.key.node.defaultChild as any).logicalId);
    assert.deepEqual(env, {
      ARCHIVE_DEST: { 'Fn::Join': ['', ['s3://', { Ref: archiveBucketId(defaults) }, '/archive/']] },
      ARCHIVE_FORMAT: 'parquet',
      ARCHIVE_SCHEMAS: '/var/task/schemas',
      ARCHIVE_KMS_KEY_ID: { 'Fn::GetAtt': [keyId, 'Arn'] },
      ARCHIVE_MAX_FILE_BYTES: '33554432',
      ARCHIVE_MAX_FILE_RECORDS: '100000',
      RUST_LOG: 'info',
    });
    const custom = archiverFunction(
      build({ format: 'jsonl.gz', prefix: 'cdc/', maxFileBytes: '1000', maxFileRecords: '10', rustLog: 'debug' }),
    ).Environment.Variables;
    assert.equal(custom.ARCHIVE_FORMAT, 'jsonl.gz');
    assert.equal(custom.ARCHIVE_DEST['Fn::Join'][1][2], '/cdc/');
    assert.equal(custom.ARCHIVE_MAX_FILE_BYTES, '1000');
    assert.equal(custom.ARCHIVE_MAX_FILE_RECORDS, '10');
    assert.equal(custom.RUST_LOG, 'debug');
  });

  it('may put objects under the prefix only: no delete, no read, no s3:*', () => {
    const statements = functionStatements(defaults);
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    assert.equal(s3.length, 1);
    assert.deepEqual(actionsOf(s3[0]).sort(), ['s3:AbortMultipartUpload', 's3:PutObject']);
    assert.deepEqual(s3[0].Resource, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [archiveBucketId(defaults), 'Arn'] }, '/archive/*']] });
    for (const s of statements) {
      assert.equal(s.Effect, 'Allow');
      for (const a of actionsOf(s)) {
        assert.ok(!/delete/i.test(a), `no delete action: ${a}`);
        assert.ok(!a.endsWith(':*') && a !== '*', `no service wildcard: ${a}`);
        assert.ok(!/^s3:(Get|PutObjectRetention|PutObjectLegalHold|BypassGovernanceRetention|PutBucket)/.test(a), `no ${a}`);
      }
    }
  });

  it('may use the key only through S3 to write objects', () => {
    const kms = functionStatements(defaults).filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
    assert.equal(kms.length, 1);
    assert.deepEqual(actionsOf(kms[0]).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    const keyId = defaults.stack.resolve((defaults.stack.archive.key.node.defaultChild as any).logicalId);
    assert.deepEqual(kms[0].Resource, { 'Fn::GetAtt': [keyId, 'Arn'] });
    assert.ok(kms[0].Condition.StringEquals['kms:ViaService'], 'only via S3');
  });

  it('has no managed policies and writes logs only to its own log group', () => {
    const logsStatement = functionStatements(defaults).find((s) => s.Sid === 'WriteLogs');
    const lg = idOf(defaults, defaults.stack.archiver.logGroup);
    assert.deepEqual(logsStatement.Resource, { 'Fn::GetAtt': [lg, 'Arn'] });
    assert.equal(defaults.json.Resources[lg]!.Properties.RetentionInDays, 365);
    assert.deepEqual(archiverFunction(defaults).LoggingConfig, { LogGroup: { Ref: lg } });
  });
});

describe('event source mapping', () => {
  it('reads the demo table stream from TRIM_HORIZON and never drops a batch silently', () => {
    const m = only(defaults, 'AWS::Lambda::EventSourceMapping');
    const tableId = defaults.stack.resolve((defaults.stack.source.demoTable!.node.defaultChild as any).logicalId);
    const queueId = defaults.stack.resolve((defaults.stack.source.onFailureQueue.node.defaultChild as any).logicalId);
    assert.deepEqual(m.EventSourceArn, { 'Fn::GetAtt': [tableId, 'StreamArn'] });
    assert.equal(m.StartingPosition, 'TRIM_HORIZON');
    assert.equal(m.BatchSize, 1000);
    assert.equal(m.MaximumBatchingWindowInSeconds, 10);
    assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.equal(m.BisectBatchOnFunctionError, true);
    assert.equal(m.MaximumRetryAttempts, 10);
    assert.equal(m.MaximumRecordAgeInSeconds, 86400);
    assert.equal(m.ParallelizationFactor, 1);
    assert.deepEqual(m.DestinationConfig, { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } });
  });

  it('takes batch size, window, parallelization, retries and record age from context', () => {
    const m = only(
      build({ batchSize: '500', batchingWindowSeconds: '30', parallelizationFactor: '4', retryAttempts: '3', maxRecordAgeSeconds: '3600' }),
      'AWS::Lambda::EventSourceMapping',
    );
    assert.equal(m.BatchSize, 500);
    assert.equal(m.MaximumBatchingWindowInSeconds, 30);
    assert.equal(m.ParallelizationFactor, 4);
    assert.equal(m.MaximumRetryAttempts, 3);
    assert.equal(m.MaximumRecordAgeInSeconds, 3600);
  });

  it('creates the demo table with a NEW_AND_OLD_IMAGES stream and key pk', () => {
    const t = only(defaults, 'AWS::DynamoDB::Table');
    assert.equal(t.TableName, 'invoices');
    assert.deepEqual(t.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
    assert.deepEqual(t.AttributeDefinitions, [{ AttributeName: 'pk', AttributeType: 'S' }]);
    assert.deepEqual(t.StreamSpecification, { StreamViewType: 'NEW_AND_OLD_IMAGES' });
    assert.equal(t.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
  });

  it('reads an existing table stream, with read rights on that stream only', () => {
    const b = build({ streamArn: STREAM });
    assert.equal(resourcesOf(b, 'AWS::DynamoDB::Table').length, 0);
    assert.equal(only(b, 'AWS::Lambda::EventSourceMapping').EventSourceArn, STREAM);
    const read = functionStatements(b).find((s) => s.Sid === 'ReadDynamoDbStream');
    assert.deepEqual(actionsOf(read).sort(), ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']);
    assert.equal(read.Resource, STREAM);
  });

  it('reads a Kinesis stream carrying DynamoDB changes', () => {
    const b = build({ kinesisStreamArn: KINESIS, kinesisKeyArn: KINESIS_KEY });
    assert.equal(resourcesOf(b, 'AWS::DynamoDB::Table').length, 0);
    const m = only(b, 'AWS::Lambda::EventSourceMapping');
    assert.equal(m.EventSourceArn, KINESIS);
    assert.equal(m.StartingPosition, 'TRIM_HORIZON');
    const read = functionStatements(b).find((s) => s.Sid === 'ReadKinesisStream');
    assert.equal(read.Resource, KINESIS);
    assert.ok(actionsOf(read).includes('kinesis:GetRecords'));
    assert.equal(functionStatements(b).find((s) => s.Sid === 'DecryptKinesisStream').Resource, KINESIS_KEY);
    assert.ok(!functionStatements(b).some((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:'))));
  });

  it('sends failed batches to an encrypted, TLS-only queue the function may write to', () => {
    const q = defaults.json.Resources[idOf(defaults, defaults.stack.source.onFailureQueue)]!.Properties;
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(q.MessageRetentionPeriod, 14 * 24 * 3600);
    defaults.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: idOf(defaults, defaults.stack.source.onFailureQueue) }],
      PolicyDocument: { Statement: [{ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] },
    });
    const send = functionStatements(defaults).find((s) => actionsOf(s).includes('sqs:SendMessage'));
    const queueId = defaults.stack.resolve((defaults.stack.source.onFailureQueue.node.defaultChild as any).logicalId);
    assert.deepEqual(send.Resource, { 'Fn::GetAtt': [queueId, 'Arn'] });
  });
});
