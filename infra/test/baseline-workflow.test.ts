/**
 * The optional baseline workflow: absent by default; when enabled, its state machine
 * (export choice, polling, Distributed Map over manifest-files.json, final coverage step),
 * the export bucket, the baseline function and the least-privilege grants of both roles.
 */
import { strict as assert } from 'assert';
import { describe, it } from 'node:test';
import { readConfig } from '../lib/config';
import { EXPORT_PREFIX, RESULTS_PREFIX } from '../lib/baseline-workflow';
import { actionsOf, archiveBucketId, assertArchiveKeyEncryption, build, Built, idOf, only, resourcesOf, roleStatements } from './helpers';

const STREAM = 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000';
const enabled = build({ baselineWorkflow: 'true', baselineMaxConcurrency: '25', baselineFilesPerBatch: '4', baselinePollSeconds: '120' });

/** The definition with CloudFormation references replaced by readable placeholders, parsed. */
function definition(b: Built): any {
  const sm = only(b, 'AWS::StepFunctions::StateMachine');
  const parts = sm.DefinitionString['Fn::Join'][1] as unknown[];
  const text = parts
    .map((p) => {
      if (typeof p === 'string') return p;
      const o = p as any;
      if (o.Ref !== undefined) return `<${o.Ref}>`;
      if (o['Fn::GetAtt'] !== undefined) return `<${o['Fn::GetAtt'][0]}.${o['Fn::GetAtt'][1]}>`;
      throw new Error(`unexpected part ${JSON.stringify(p)}`);
    })
    .join('');
  return JSON.parse(text);
}

function stateMachineStatements(b: Built): any[] {
  const roleId = idOf(b, b.stack.baseline!.stateMachine.role);
  const out: any[] = [];
  for (const [, p] of resourcesOf(b, 'AWS::IAM::Policy')) {
    if ((p.Roles as any[]).some((r) => r.Ref === roleId)) out.push(...p.PolicyDocument.Statement);
  }
  return out;
}

/** Statements granting `action` (exactly, or by a service wildcard). */
function granting(statements: any[], action: string): any[] {
  const service = action.split(':')[0];
  return statements.filter((s) => actionsOf(s).some((a) => a === action || a === `${service}:*` || a === '*'));
}

describe('baseline workflow', () => {
  it('is absent by default', () => {
    const b = build();
    assert.equal(b.stack.baseline, undefined);
    assert.equal(resourcesOf(b, 'AWS::StepFunctions::StateMachine').length, 0);
    assert.equal(b.json.Outputs?.BaselineStateMachineArn, undefined);
    assert.equal(readConfig(() => undefined).baselineWorkflow, false);
  });

  it('exports the demo table into the export bucket, full or incremental as the input says', () => {
    const d = definition(enabled);
    const tableArn = `<${idOf(enabled, enabled.stack.source.demoTable!)}.Arn>`;
    const bucket = `<${idOf(enabled, enabled.stack.baseline!.exportBucket)}>`;
    assert.equal(d.StartAt, 'ExportType');
    const choice = d.States.ExportType;
    assert.equal(choice.Type, 'Choice');
    assert.equal(choice.Default, 'InvalidInput');
    assert.equal(d.States.InvalidInput.Type, 'Fail');
    // No exportType, or FULL_EXPORT: a full export.
    assert.deepEqual(choice.Choices[0].Or, [
      { Variable: '$.exportType', IsPresent: false },
      { Variable: '$.exportType', StringEquals: 'FULL_EXPORT' },
    ]);
    assert.equal(choice.Choices[0].Next, 'FullExport');
    // INCREMENTAL_EXPORT with a window of two timestamps: gap repair.
    assert.deepEqual(choice.Choices[1].And, [
      { Variable: '$.exportType', StringEquals: 'INCREMENTAL_EXPORT' },
      { Variable: '$.from', IsTimestamp: true },
      { Variable: '$.to', IsTimestamp: true },
    ]);
    assert.equal(choice.Choices[1].Next, 'IncrementalExport');

    const full = d.States.FullExport;
    assert.match(full.Resource, /:states:::aws-sdk:dynamodb:exportTableToPointInTime$/);
    assert.deepEqual(full.Parameters, {
      TableArn: tableArn,
      S3Bucket: bucket,
      S3Prefix: EXPORT_PREFIX,
      S3SseAlgorithm: 'KMS',
      S3SseKmsKeyId: `<${idOf(enabled, enabled.stack.archive.key)}.Arn>`,
      ExportFormat: 'DYNAMODB_JSON',
      'ClientToken.$': '$$.Execution.Name',
      ExportType: 'FULL_EXPORT',
    });
    const incremental = d.States.IncrementalExport;
    assert.equal(incremental.Parameters.ExportType, 'INCREMENTAL_EXPORT');
    assert.deepEqual(incremental.Parameters.IncrementalExportSpecification, {
      'ExportFromTime.$': '$.from',
      'ExportToTime.$': '$.to',
      ExportViewType: 'NEW_AND_OLD_IMAGES',
    });
    assert.equal(incremental.Parameters['ClientToken.$'], '$$.Execution.Name');
    for (const s of [full, incremental]) {
      assert.equal(s.Next, 'WaitForExport');
      assert.equal(s.ResultPath, '$.export');
    }
  });

  it('polls DescribeExport until COMPLETED, and fails on FAILED', () => {
    const d = definition(enabled);
    assert.deepEqual(d.States.WaitForExport, { Type: 'Wait', Seconds: 120, Next: 'DescribeExport' });
    assert.match(d.States.DescribeExport.Resource, /:aws-sdk:dynamodb:describeExport$/);
    assert.deepEqual(d.States.DescribeExport.Parameters, { 'ExportArn.$': '$.export.exportArn' });
    const done = d.States.ExportDone;
    assert.deepEqual(
      done.Choices.map((c: any) => [c.StringEquals, c.Next]),
      [
        ['COMPLETED', 'LocateExport'],
        ['FAILED', 'ExportFailed'],
      ],
    );
    assert.equal(done.Default, 'WaitForExport');
    assert.equal(d.States.ExportFailed.Type, 'Fail');
  });

  it('archives batches of data files with a Distributed Map over manifest-files.json, then records the coverage', () => {
    const d = definition(enabled);
    const fn = `<${idOf(enabled, enabled.stack.baseline!.function)}.Arn>`;
    assert.equal(
      d.States.LocateExport.Parameters['id.$'],
      "States.ArrayGetItem(States.StringSplit($.export.exportArn, '/'), 3)",
    );
    const paths = d.States.ExportPaths.Parameters;
    const bucket = `<${idOf(enabled, enabled.stack.baseline!.exportBucket)}>`;
    assert.equal(paths['url.$'], `States.Format('s3://${bucket}/${EXPORT_PREFIX}/AWSDynamoDB/{}/', $.located.id)`);
    assert.equal(paths['filesKey.$'], `States.Format('${EXPORT_PREFIX}/AWSDynamoDB/{}/manifest-files.json', $.located.id)`);

    const map = d.States.ArchiveDataFiles;
    assert.equal(map.Type, 'Map');
    assert.equal(map.ItemProcessor.ProcessorConfig.Mode, 'DISTRIBUTED');
    assert.deepEqual(map.ItemReader.ReaderConfig, { InputType: 'JSONL' });
    assert.deepEqual(map.ItemReader.Parameters, { Bucket: bucket, 'Key.$': '$.paths.filesKey' });
    assert.deepEqual(map.ItemSelector, { 'export.$': '$.paths.url', 'file.$': '$$.Map.Item.Value' });
    assert.deepEqual(map.ItemBatcher, { MaxItemsPerBatch: 4 });
    assert.equal(map.MaxConcurrency, 25);
    // No failure tolerated (the default): one failed batch fails the run, and no coverage is recorded.
    assert.equal(map.ToleratedFailurePercentage, undefined);
    assert.equal(map.ToleratedFailureCount, undefined);
    assert.deepEqual(map.ResultWriter.Parameters, { Bucket: bucket, Prefix: RESULTS_PREFIX });
    assert.equal(map.Next, 'RecordCoverage');

    const batch = map.ItemProcessor.States.ArchiveBatch;
    assert.equal(batch.Resource, fn);
    assert.deepEqual(batch.Parameters, { action: 'baseline', 'export.$': '$.Items[0].export', 'files.$': '$.Items[*].file' });
    const complete = d.States.RecordCoverage;
    assert.equal(complete.Resource, fn);
    assert.deepEqual(complete.Parameters, { action: 'baseline-complete', 'export.$': '$.paths.url' });
    assert.equal(complete.End, true);
    // Failed invocations are retried: every name is deterministic, so a retry writes nothing twice.
    for (const s of [batch, complete]) {
      const r = s.Retry.find((x: any) => x.ErrorEquals.includes('States.TaskFailed'));
      assert.ok(r && r.MaxAttempts >= 2, JSON.stringify(s.Retry));
    }
  });

  it('gives the state machine only the export, the exports prefix and the one function', () => {
    const st = stateMachineStatements(enabled);
    const table = { 'Fn::GetAtt': [idOf(enabled, enabled.stack.source.demoTable!), 'Arn'] };
    assert.deepEqual(granting(st, 'dynamodb:ExportTableToPointInTime').map((s) => s.Resource), [table]);
    assert.deepEqual(granting(st, 'dynamodb:DescribeExport').map((s) => s.Resource), [{ 'Fn::Join': ['', [table, '/export/*']] }]);
    const exportBucketId = idOf(enabled, enabled.stack.baseline!.exportBucket);
    const under = (prefix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [exportBucketId, 'Arn'] }, `/${prefix}/*`]] });
    assert.deepEqual(
      granting(st, 's3:PutObject').map((s) => s.Resource).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [under(EXPORT_PREFIX), under(RESULTS_PREFIX)],
    );
    assert.deepEqual(granting(st, 's3:GetObject').map((s) => s.Resource), [under(EXPORT_PREFIX)]);
    assert.ok(
      !st.some((s) => s.Resource === '*' && actionsOf(s).some((a) => !a.startsWith('xray:') && !a.startsWith('logs:'))),
      'only X-Ray and log delivery on "*"',
    );
    for (const a of ['s3:DeleteObject', 's3:PutBucketPolicy', 'dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:PutItem']) {
      assert.deepEqual(granting(st, a), [], a);
    }
    const invoke = granting(st, 'lambda:InvokeFunction');
    const fnArn = { 'Fn::GetAtt': [idOf(enabled, enabled.stack.baseline!.function), 'Arn'] };
    assert.deepEqual(invoke.map((s) => s.Resource), [[fnArn, { 'Fn::Join': ['', [fnArn, ':*']] }]]);
    // Nothing touches the raw archive.
    const archiveId = archiveBucketId(enabled);
    assert.ok(!JSON.stringify(st).includes(archiveId), 'the state machine has no access to the archive bucket');
  });

  it('lets the baseline function read exports (and note its batches there) and create archive objects, never delete', () => {
    const st = roleStatements(enabled, enabled.stack.baseline!.function);
    const archiveId = archiveBucketId(enabled);
    const exportBucketId = idOf(enabled, enabled.stack.baseline!.exportBucket);
    const put = granting(st, 's3:PutObject');
    assert.deepEqual(
      put.map((s) => s.Resource),
      [
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exportBucketId, 'Arn'] }, `/${EXPORT_PREFIX}/*`]] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [archiveId, 'Arn'] }, '/archive/*']] },
      ],
    );
    assert.deepEqual(
      granting(st, 's3:GetObject').map((s) => s.Resource),
      [
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exportBucketId, 'Arn'] }, `/${EXPORT_PREFIX}/*`]] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [archiveId, 'Arn'] }, '/archive/*']] },
      ],
    );
    for (const a of ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObjectRetention', 's3:BypassGovernanceRetention', 's3:PutObjectLegalHold']) {
      assert.deepEqual(granting(st, a), [], a);
    }
    const table = { 'Fn::GetAtt': [idOf(enabled, enabled.stack.source.demoTable!), 'Arn'] };
    assert.deepEqual(granting(st, 'dynamodb:DescribeTable').map((s) => s.Resource), [table]);
    assert.deepEqual(st.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:'))).flatMap(actionsOf), ['dynamodb:DescribeTable']);
    const compactedId = idOf(enabled, enabled.stack.compacted.bucket);
    assert.ok(!JSON.stringify(st).includes(compactedId), 'no access to the compacted layer');
    // The scheduled maintenance function stays read-only on the raw archive.
    const maint = roleStatements(enabled, enabled.stack.maintenance.function);
    assert.ok(!granting(maint, 's3:PutObject').some((s) => JSON.stringify(s.Resource).includes(archiveId)));
  });

  it('runs the maintenance package with the archive and exports as settings', () => {
    const p = enabled.json.Resources[idOf(enabled, enabled.stack.baseline!.function)]!.Properties;
    const env = p.Environment.Variables;
    assert.equal(env.ARCHIVE_ROLE, 'maintenance');
    assert.equal(env.ARCHIVE_FORMAT, 'parquet');
    assert.deepEqual(env.ARCHIVE_SOURCE, { 'Fn::Join': ['', ['s3://', { Ref: archiveBucketId(enabled) }, '/archive/']] });
    assert.deepEqual(env.BASELINE_EXPORTS, {
      'Fn::Join': ['', ['s3://', { Ref: idOf(enabled, enabled.stack.baseline!.exportBucket) }, `/${EXPORT_PREFIX}/`]],
    });
    assert.equal(p.Timeout, 900);
    assert.equal(p.ReservedConcurrentExecutions, undefined, 'batches run in parallel');
    assert.equal(p.Architectures[0], 'arm64');
  });

  it('keeps exports in a private bucket encrypted with the archive key, expiring them', () => {
    const bucket = enabled.json.Resources[idOf(enabled, enabled.stack.baseline!.exportBucket)]!.Properties;
    assertArchiveKeyEncryption(enabled, bucket);
    assert.equal(bucket.ObjectLockEnabled, undefined);
    assert.equal(bucket.LifecycleConfiguration.Rules[0].ExpirationInDays, 14);
    assert.equal(bucket.LoggingConfiguration.LogFilePrefix, 'export-bucket/');
    const sm = only(enabled, 'AWS::StepFunctions::StateMachine');
    assert.equal(sm.LoggingConfiguration.Level, 'ALL');
    assert.deepEqual(sm.TracingConfiguration, { Enabled: true });
    assert.ok(enabled.json.Outputs?.BaselineStateMachineArn);
  });

  it('exports the table of a configured stream, or the configured table', () => {
    const fromStream = build({ baselineWorkflow: 'true', streamArn: STREAM });
    assert.equal(definition(fromStream).States.FullExport.Parameters.TableArn, 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders');
    const other = 'arn:aws:dynamodb:eu-west-1:123456789012:table/Invoices';
    const kinesis = build({
      baselineWorkflow: 'true',
      kinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/changes',
      baselineTableArn: other,
    });
    assert.equal(definition(kinesis).States.IncrementalExport.Parameters.TableArn, other);
    assert.deepEqual(granting(stateMachineStatements(kinesis), 'dynamodb:DescribeExport').map((s) => s.Resource), [`${other}/export/*`]);
  });

  it('rejects settings it cannot use, naming the key', () => {
    const get = (ctx: Record<string, unknown>) => (key: string) => ctx[key];
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ baselineWorkflow: 'yes' }, /context "baselineWorkflow": expected true or false/],
      [{ baselineWorkflow: 'true', kinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/s' }, /context "baselineTableArn": required/],
      [{ baselineTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders' }, /only meaningful with baselineWorkflow=true/],
      [{ baselineWorkflow: 'true', baselineTableArn: 'Orders' }, /context "baselineTableArn": expected a DynamoDB table ARN/],
      [{ baselineWorkflow: 'true', baselineMaxConcurrency: '0' }, /context "baselineMaxConcurrency"/],
      [{ baselineWorkflow: 'true', baselineFilesPerBatch: '101' }, /context "baselineFilesPerBatch"/],
      [{ baselineWorkflow: 'true', baselinePollSeconds: '5' }, /context "baselinePollSeconds"/],
    ];
    for (const [ctx, err] of bad) assert.throws(() => readConfig(get(ctx)), err, JSON.stringify(ctx));
  });
});
