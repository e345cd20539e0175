/** cdk-nag AwsSolutionsChecks over several configurations, and the configuration's checks. */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { describe, it } from 'node:test';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { readConfig } from '../lib/config';
import { build } from './helpers';

const CONFIGS: Record<string, Record<string, unknown>> = {
  'default (demo table, parquet, COMPLIANCE)': {},
  'existing stream, jsonl.gz, GOVERNANCE, e-mail': {
    streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000',
    format: 'jsonl.gz',
    objectLockMode: 'GOVERNANCE',
    alarmEmail: 'ops@example.com',
  },
  'kinesis, no lock, existing topic': {
    kinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/changes',
    objectLockMode: 'OFF',
    standardTables: 'Orders',
    alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
  },
  'no prefix, other compaction settings': {
    prefix: '',
    compactLookbackDays: '14',
    compactedExpiryDays: '400',
    compactSchedule: 'rate(12 hours)',
  },
  'baseline workflow on the demo table': { baselineWorkflow: 'true' },
  'baseline workflow on an existing stream, no prefix': {
    baselineWorkflow: 'true',
    streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000',
    prefix: '',
  },
  'baseline workflow with kinesis and a given table': {
    baselineWorkflow: 'true',
    kinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/changes',
    baselineTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/Invoices',
  },
};

describe('cdk-nag AwsSolutionsChecks', () => {
  for (const [name, context] of Object.entries(CONFIGS)) {
    it(`finds nothing unacknowledged: ${name}`, () => {
      // Synthesis throws on an unacknowledged error; warnings are checked from the report.
      const b = build(context);
      const report = JSON.parse(fs.readFileSync(path.join(b.outdir, 'validation-report.json'), 'utf8'));
      const nag = report.pluginReports.find((r: any) => r.pluginName === 'AwsSolutions');
      assert.ok(nag, 'the AwsSolutions pack ran');
      assert.equal(nag.conclusion, 'success');
      assert.deepEqual(nag.violations, []);
      for (const s of nag.suppressedViolations ?? []) {
        assert.ok(typeof s.reason === 'string' && s.reason.length >= 40, `${s.ruleName} is acknowledged with a reason`);
      }
    });
  }

  it('acknowledges exactly the intended findings', () => {
    const report = JSON.parse(fs.readFileSync(path.join(build().outdir, 'validation-report.json'), 'utf8'));
    const nag = report.pluginReports.find((r: any) => r.pluginName === 'AwsSolutions');
    const ids = (nag.suppressedViolations as any[]).map((s) => s.ruleName).sort();
    assert.deepEqual(ids, [
      'AwsSolutions-IAM5[Resource::*]',
      // The archiver's puts and the maintenance function's reads under the archive prefix.
      'AwsSolutions-IAM5[Resource::<ArchiveBucket49F1AC64.Arn>/archive/*]',
      'AwsSolutions-IAM5[Resource::<ArchiveBucket49F1AC64.Arn>/archive/*]',
      'AwsSolutions-IAM5[Resource::<CompactedBucketCF81A76E.Arn>/*]',
      'AwsSolutions-SQS3',
    ]);
  });

  it('fails synthesis on a finding that is not acknowledged', () => {
    // Proves the pack is active: an unencrypted queue without TLS enforcement is reported.
    let message = '';
    assert.throws(
      () => build({}, (stack) => new sqs.Queue(stack, 'Careless', { encryption: sqs.QueueEncryption.UNENCRYPTED })),
      (e: Error) => {
        message = e.message;
        return /Validation failed/.test(message);
      },
    );
    const file = /found in: (\S+validation-report\.json)/.exec(message)?.[1];
    assert.ok(file, message);
    const nag = JSON.parse(fs.readFileSync(file, 'utf8')).pluginReports.find((r: any) => r.pluginName === 'AwsSolutions');
    const found = (nag.violations as any[]).map((v) => v.ruleName);
    assert.ok(found.includes('AwsSolutions-SQS2'), `reported: ${found.join(', ')}`);
    assert.ok(found.includes('AwsSolutions-SQS4'), `reported: ${found.join(', ')}`);
  });
});

describe('configuration', () => {
  const get = (ctx: Record<string, unknown>) => (key: string) => ctx[key];

  it('has the documented defaults', () => {
    const c = readConfig(get({}));
    assert.equal(c.format, 'parquet');
    assert.equal(c.prefix, 'archive/');
    assert.equal(c.retentionYears, 7);
    assert.equal(c.objectLockMode, 'COMPLIANCE');
    assert.equal(c.demoTableName, 'invoices');
    assert.equal(c.memorySize, 256);
    assert.equal(c.timeoutSeconds, 60);
    assert.equal(c.functionAssetDir, '../target/lambda/ddb-archiver-lambda');
    assert.equal(c.schemasDir, '../schemas');
  });

  it('rejects values it cannot use, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ format: 'csv' }, /context "format": expected parquet or jsonl.gz/],
      [{ prefix: 'no-slash' }, /context "prefix"/],
      [{ prefix: '/abs/' }, /context "prefix"/],
      [{ objectLockMode: 'LEGAL' }, /context "objectLockMode"/],
      [{ retentionYears: '0' }, /context "retentionYears"/],
      [{ batchSize: 'many' }, /context "batchSize"/],
      [{ parallelizationFactor: '11' }, /context "parallelizationFactor"/],
      [{ streamArn: 'arn:aws:sqs:eu-west-1:123456789012:q' }, /context "streamArn"/],
      [
        { streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/T1x/stream/x', kinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/s' },
        /either streamArn or kinesisStreamArn/,
      ],
      [{ infrequentAccessAfterDays: '10' }, /context "infrequentAccessAfterDays"/],
      [{ alarmEmail: 'nobody' }, /context "alarmEmail"/],
    ];
    for (const [ctx, err] of bad) assert.throws(() => readConfig(get(ctx)), err, JSON.stringify(ctx));
  });
});
