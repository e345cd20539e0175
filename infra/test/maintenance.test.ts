/**
 * The compacted layer and its maintenance: the compacted-layer bucket, the maintenance
 * function (package, environment, limits, least-privilege role), its schedules and
 * dead-letter queue, its alarms, dashboard widgets and outputs, and their configuration.
 */
import { strict as assert } from 'assert';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { transitionsBefore } from '../lib/compacted-bucket';
import { DEFAULTS, expiryDays, latestCompactedExpiryDays, readConfig } from '../lib/config';
import { actionsOf, archiveBucketId, assertArchiveKeyEncryption, assertPrivateVersioned, build, Built, functionStatements, idOf, only, resourcesOf, roleStatements } from './helpers';

const defaults = build();

function props(b: Built, id: string): any {
  return b.json.Resources[id]!.Properties;
}

function compactedBucket(b: Built): any {
  return props(b, idOf(b, b.stack.compacted.bucket));
}

function maintenanceFunction(b: Built): any {
  return props(b, idOf(b, b.stack.maintenance.function));
}

function maintenanceStatements(b: Built): any[] {
  return roleStatements(b, b.stack.maintenance.function);
}

/** The ARN of the objects under `path` in a bucket, as the template writes it. */
function objectsArn(bucketId: string, path: string): unknown {
  return { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, path]] };
}

/** The rule whose target input is `{"action": action}`. */
function rule(b: Built, action: string): any {
  const found = resourcesOf(b, 'AWS::Events::Rule')
    .map(([, p]) => p)
    .filter((r) => JSON.parse(r.Targets[0].Input).action === action);
  assert.equal(found.length, 1, `one ${action} rule`);
  return found[0];
}

function alarm(b: Built, metric: string): any {
  const found = resourcesOf(b, 'AWS::CloudWatch::Alarm')
    .map(([, p]) => p)
    .filter((a) => a.MetricName === metric && a.Dimensions?.[0]?.Value?.Ref === idOf(b, b.stack.maintenance.function));
  assert.equal(found.length, 1, `one alarm on ${metric} of the maintenance function`);
  return found[0];
}

describe('compacted-layer bucket', () => {
  it('is private, versioned, without Object Lock, with access logs, and kept when the stack is deleted', () => {
    const p = compactedBucket(defaults);
    assertPrivateVersioned(p);
    assert.equal(p.ObjectLockEnabled, undefined, 'compaction must be able to replace a day');
    assert.equal(p.ObjectLockConfiguration, undefined);
    assert.deepEqual(p.LoggingConfiguration, {
      DestinationBucketName: { Ref: idOf(defaults, defaults.stack.archive.accessLogs) },
      LogFilePrefix: 'compacted-bucket/',
    });
    defaults.template.hasResource('AWS::S3::Bucket', {
      Properties: { LoggingConfiguration: { LogFilePrefix: 'compacted-bucket/' } },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('encrypts with the archive key', () => {
    assertArchiveKeyEncryption(defaults, compactedBucket(defaults));
  });

  it('denies requests without TLS and puts with another encryption', () => {
    defaults.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: idOf(defaults, defaults.stack.compacted.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Sid: 'DenyOtherEncryption',
            Effect: 'Deny',
            Action: 's3:PutObject',
            Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
          }),
        ]),
      },
    });
  });

  it('moves data only to classes Athena reads, and expires it before the raw archive does', () => {
    const rules = compactedBucket(defaults).LifecycleConfiguration.Rules as any[];
    const classes = rules.flatMap((r) => [...(r.Transitions ?? []), ...(r.NoncurrentVersionTransitions ?? [])]).map((t) => t.StorageClass);
    assert.deepEqual(classes.sort(), ['GLACIER_IR', 'STANDARD_IA']);
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
    assert.equal(expiring.length, 1);
    const rule = expiring[0];
    assert.equal(rule.ExpirationInDays, expiryDays(7) - 7 - 2);
    // Written at most lookback + 2 days after the day's first raw objects: gone no later than they are.
    assert.ok(rule.ExpirationInDays + DEFAULTS.compactLookbackDays + 2 <= expiryDays(7));
    assert.equal(rule.Prefix, undefined, 'the whole bucket: table trees and manifests');
    assert.equal(rule.NoncurrentVersionExpiration.NoncurrentDays, 7);
    assert.equal(rule.AbortIncompleteMultipartUpload.DaysAfterInitiation, 1);
    assert.ok(rules.some((r) => r.ExpiredObjectDeleteMarker === true), 'expired delete markers are removed');
    for (const r of rules) assert.equal(r.Status, 'Enabled');
  });

  it('follows the retention, lookback and expiry from context', () => {
    const ten = compactedBucket(build({ retentionYears: '10', compactLookbackDays: '14' })).LifecycleConfiguration.Rules[0];
    assert.equal(ten.ExpirationInDays, expiryDays(10) - 14 - 2);
    const short = compactedBucket(build({ compactedExpiryDays: '100' })).LifecycleConfiguration.Rules[0];
    assert.equal(short.ExpirationInDays, 100);
    // Glacier IR bills at least 90 days: 10 days there before expiry are not worth it.
    assert.deepEqual(short.Transitions, [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }]);
  });

  it('makes a transition only when the object then stays in the class its minimum billed time', () => {
    const classes = (expiry: number) => transitionsBefore(expiry, [30, 90]).map((t) => t.storageClass.value);
    assert.deepEqual(classes(2553), ['STANDARD_IA', 'GLACIER_IR']);
    assert.deepEqual(classes(180), ['STANDARD_IA', 'GLACIER_IR']);
    assert.deepEqual(classes(179), ['STANDARD_IA']);
    assert.deepEqual(classes(59), []);
  });
});

describe('maintenance function', () => {
  it('runs the same package as the archiver on provided.al2023, arm64, with room for the external sort', () => {
    const f = maintenanceFunction(defaults);
    assert.equal(f.Runtime, 'provided.al2023');
    assert.deepEqual(f.Architectures, ['arm64']);
    assert.equal(f.Handler, 'bootstrap');
    assert.deepEqual(f.Code, props(defaults, idOf(defaults, defaults.stack.archiver.function)).Code);
    assert.equal(f.MemorySize, 3008);
    assert.equal(f.Timeout, 900);
    assert.deepEqual(f.EphemeralStorage, { Size: 10240 });
    assert.equal(f.ReservedConcurrentExecutions, 1, 'compactions of the same day never race');
    assert.equal(maintenanceFunction(build({ maintenanceMemorySize: '4096' })).MemorySize, 4096);
  });

  it('is configured by the environment variables of the contract', () => {
    assert.deepEqual(maintenanceFunction(defaults).Environment.Variables, {
      ARCHIVE_ROLE: 'maintenance',
      ARCHIVE_SOURCE: { 'Fn::Join': ['', ['s3://', { Ref: archiveBucketId(defaults) }, '/archive/']] },
      COMPACT_DEST: { 'Fn::Join': ['', ['s3://', { Ref: idOf(defaults, defaults.stack.compacted.bucket) }, '/']] },
      ARCHIVE_SCHEMAS: '/var/task/schemas',
      COMPACT_LOOKBACK_DAYS: '7',
      COMPACT_SETTLE_HOURS: '26',
      COMPACT_ALARM_AFTER_HOURS: '74',
      COMPACT_MAX_FILE_BYTES: '268435456',
      RUST_LOG: 'info',
    });
    const custom = maintenanceFunction(
      build({
        prefix: 'cdc/',
        compactLookbackDays: '3',
        compactSettleHours: '30',
        compactAlarmAfterHours: '60',
        compactMaxFileBytes: '536870912',
        rustLog: 'debug',
      }),
    ).Environment.Variables;
    assert.equal(custom.ARCHIVE_SOURCE['Fn::Join'][1][2], '/cdc/');
    assert.equal(custom.COMPACT_LOOKBACK_DAYS, '3');
    assert.equal(custom.COMPACT_SETTLE_HOURS, '30');
    assert.equal(custom.COMPACT_ALARM_AFTER_HOURS, '60');
    assert.equal(custom.COMPACT_MAX_FILE_BYTES, '536870912');
    assert.equal(custom.RUST_LOG, 'debug');
  });

  it('leaves the archiver function as it was', () => {
    const env = props(defaults, idOf(defaults, defaults.stack.archiver.function)).Environment.Variables;
    assert.equal(env.ARCHIVE_ROLE, undefined);
    assert.ok(env.ARCHIVE_DEST);
    // The archiver has no access to the compacted layer.
    const compactedId = idOf(defaults, defaults.stack.compacted.bucket);
    assert.ok(!JSON.stringify(functionStatements(defaults)).includes(compactedId));
  });

  it('reads from no stream: the only event source mapping is the archiver’s', () => {
    const mappings = resourcesOf(defaults, 'AWS::Lambda::EventSourceMapping').map(([, p]) => p);
    assert.equal(mappings.length, 1);
    assert.deepEqual(mappings[0].FunctionName, { Ref: idOf(defaults, defaults.stack.archiver.function) });
    assert.ok(!maintenanceStatements(defaults).some((s) => actionsOf(s).some((a) => /^(dynamodb|kinesis):/.test(a))));
  });

  it('writes logs to its own log group, kept a year', () => {
    const lg = idOf(defaults, defaults.stack.maintenance.logGroup);
    assert.notEqual(lg, idOf(defaults, defaults.stack.archiver.logGroup));
    assert.equal(props(defaults, lg).RetentionInDays, 365);
    assert.deepEqual(maintenanceFunction(defaults).LoggingConfig, { LogGroup: { Ref: lg } });
    const write = maintenanceStatements(defaults).find((s) => s.Sid === 'WriteLogs');
    assert.deepEqual(write.Resource, { 'Fn::GetAtt': [lg, 'Arn'] });
  });
});

describe('maintenance role', () => {
  const rawId = archiveBucketId(defaults);
  const compactedId = idOf(defaults, defaults.stack.compacted.bucket);
  const statements = maintenanceStatements(defaults);

  it('may only read the raw archive, under its prefix', () => {
    const raw = statements.filter((s) => JSON.stringify(s.Resource).includes(rawId));
    assert.deepEqual(
      raw.map((s) => [actionsOf(s).sort(), s.Resource, s.Condition]),
      [
        [['s3:GetObject', 's3:GetObjectAttributes', 's3:GetObjectVersionAttributes'], objectsArn(rawId, '/archive/*'), undefined],
        [['s3:ListBucket'], { 'Fn::GetAtt': [rawId, 'Arn'] }, { StringLike: { 's3:prefix': 'archive/*' } }],
      ],
    );
    for (const s of raw) {
      for (const a of actionsOf(s)) assert.ok(!/^s3:(Put|Delete|Abort|Restore|Bypass|Replicate)/.test(a), `no ${a} on the raw archive`);
    }
  });

  it('lists the whole raw bucket when the prefix is empty', () => {
    const b = build({ prefix: '' });
    const s = maintenanceStatements(b);
    assert.equal(s.find((x) => x.Sid === 'ListRawArchive').Condition, undefined);
    assert.deepEqual(s.find((x) => x.Sid === 'ReadRawArchive').Resource, objectsArn(archiveBucketId(b), '/*'));
  });

  it('reads, writes and deletes in the compacted layer only', () => {
    const compacted = statements.filter((s) => JSON.stringify(s.Resource).includes(compactedId));
    assert.deepEqual(
      compacted.map((s) => [actionsOf(s).sort(), s.Resource]),
      [
        [
          ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:GetObjectAttributes', 's3:PutObject'],
          objectsArn(compactedId, '/*'),
        ],
        [['s3:ListBucket'], { 'Fn::GetAtt': [compactedId, 'Arn'] }],
      ],
    );
    const s3Statements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    assert.equal(s3Statements.length, 4, 'no other S3 access');
  });

  it('uses the key through S3 only, and sends to its dead-letter queue only', () => {
    const kms = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
    assert.equal(kms.length, 1);
    assert.deepEqual(actionsOf(kms[0]).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.deepEqual(kms[0].Resource, { 'Fn::GetAtt': [idOf(defaults, defaults.stack.archive.key), 'Arn'] });
    assert.ok(kms[0].Condition.StringEquals['kms:ViaService'], 'only via S3');
    const sqs = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    assert.deepEqual(sqs.map((s) => [actionsOf(s), s.Resource]), [
      [['sqs:SendMessage'], { 'Fn::GetAtt': [idOf(defaults, defaults.stack.maintenance.deadLetterQueue), 'Arn'] }],
    ]);
  });

  it('has no wildcard action, no bucket-level change and no deny-bypassing action', () => {
    for (const s of statements) {
      assert.equal(s.Effect, 'Allow');
      for (const a of actionsOf(s)) {
        assert.ok(!a.includes('*'), `no wildcard action: ${a}`);
        assert.ok(!/^s3:(PutBucket|DeleteBucket|PutObjectRetention|PutObjectLegalHold|BypassGovernanceRetention|DeleteObjectVersion)/.test(a), `no ${a}`);
      }
      assert.notEqual(s.Resource, '*');
    }
  });
});

describe('maintenance schedules', () => {
  const fnArn = { 'Fn::GetAtt': [idOf(defaults, defaults.stack.maintenance.function), 'Arn'] };
  const dlqArn = { 'Fn::GetAtt': [idOf(defaults, defaults.stack.maintenance.deadLetterQueue), 'Arn'] };

  it('compact every day and verify every week, UTC', () => {
    assert.equal(rule(defaults, 'compact').ScheduleExpression, 'cron(30 2 * * ? *)');
    assert.equal(rule(defaults, 'verify').ScheduleExpression, 'cron(0 4 ? * SUN *)');
    for (const action of ['compact', 'verify']) {
      const r = rule(defaults, action);
      assert.equal(r.State, 'ENABLED');
      assert.equal(r.Targets.length, 1);
      assert.deepEqual(r.Targets[0].Arn, fnArn);
      assert.deepEqual(JSON.parse(r.Targets[0].Input), { action });
    }
    const b = build({ compactSchedule: 'cron(0 6 * * ? *)', verifySchedule: 'rate(1 day)' });
    assert.equal(rule(b, 'compact').ScheduleExpression, 'cron(0 6 * * ? *)');
    assert.equal(rule(b, 'verify').ScheduleExpression, 'rate(1 day)');
  });

  it('retry twice within 6 hours, then keep the event in the dead-letter queue', () => {
    for (const action of ['compact', 'verify']) {
      const t = rule(defaults, action).Targets[0];
      assert.deepEqual(t.RetryPolicy, { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 6 * 3600 });
      assert.deepEqual(t.DeadLetterConfig, { Arn: dlqArn });
    }
    // A run that fails is retried by Lambda the same way, then its event is kept too.
    const invoke = only(defaults, 'AWS::Lambda::EventInvokeConfig');
    assert.deepEqual(invoke.FunctionName, { Ref: idOf(defaults, defaults.stack.maintenance.function) });
    assert.equal(invoke.MaximumRetryAttempts, 2);
    assert.equal(invoke.MaximumEventAgeInSeconds, 6 * 3600);
    assert.deepEqual(maintenanceFunction(defaults).DeadLetterConfig, { TargetArn: dlqArn });
  });

  it('may invoke the function, each rule for itself', () => {
    const perms = resourcesOf(defaults, 'AWS::Lambda::Permission').map(([, p]) => p);
    assert.equal(perms.length, 2);
    for (const p of perms) {
      assert.equal(p.Principal, 'events.amazonaws.com');
      assert.equal(p.Action, 'lambda:InvokeFunction');
      assert.deepEqual(p.FunctionName, fnArn);
      assert.ok(p.SourceArn['Fn::GetAtt'][0].startsWith('Maintenance'), JSON.stringify(p.SourceArn));
    }
  });

  it('keep dead letters in an encrypted, TLS-only queue for 14 days', () => {
    const q = props(defaults, idOf(defaults, defaults.stack.maintenance.deadLetterQueue));
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(q.MessageRetentionPeriod, 14 * 24 * 3600);
    defaults.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: idOf(defaults, defaults.stack.maintenance.deadLetterQueue) }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
  });
});

describe('maintenance alarms, dashboard and outputs', () => {
  const fnId = idOf(defaults, defaults.stack.maintenance.function);
  const topicId = idOf(defaults, defaults.stack.monitoring.topic);

  it('alarm on days still uncompacted, and on compaction that stopped reporting', () => {
    const a = alarm(defaults, 'UncompactedDaysPastThreshold');
    assert.equal(a.Namespace, 'DdbArchiver');
    assert.equal(a.Statistic, 'Maximum');
    assert.equal(a.Period, 86400);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(a.Threshold, 0);
    assert.equal(a.TreatMissingData, 'breaching', 'the daily run reports every day');
  });

  it('alarm on failed compactions and on objects failing verification', () => {
    for (const m of ['CompactionFailedDays', 'VerifyBadObjects']) {
      const a = alarm(defaults, m);
      assert.equal(a.Namespace, 'DdbArchiver');
      assert.equal(a.Statistic, 'Sum');
      assert.equal(a.Period, 86400);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
      assert.equal(a.Threshold, 0);
      assert.equal(a.TreatMissingData, 'notBreaching');
    }
  });

  it('alarm on the function failing and on dead letters', () => {
    const errors = alarm(defaults, 'Errors');
    assert.equal(errors.Namespace, 'AWS/Lambda');
    assert.deepEqual(errors.Dimensions, [{ Name: 'FunctionName', Value: { Ref: fnId } }]);
    assert.equal(errors.Threshold, 0);
    const dlqId = idOf(defaults, defaults.stack.maintenance.deadLetterQueue);
    const dlq = resourcesOf(defaults, 'AWS::CloudWatch::Alarm')
      .map(([, p]) => p)
      .filter((x) => x.Namespace === 'AWS/SQS' && x.Dimensions[0].Value['Fn::GetAtt']?.[0] === dlqId);
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0].MetricName, 'ApproximateNumberOfMessagesVisible');
    assert.equal(dlq[0].Threshold, 0);
    assert.equal(dlq[0].ComparisonOperator, 'GreaterThanThreshold');
  });

  it('notify the alarm topic, with the maintenance function as the EMF dimension', () => {
    for (const m of ['UncompactedDaysPastThreshold', 'CompactionFailedDays', 'VerifyBadObjects', 'Errors']) {
      const a = alarm(defaults, m);
      assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: { Ref: fnId } }]);
      assert.deepEqual(a.AlarmActions, [{ Ref: topicId }]);
      assert.deepEqual(a.OKActions, [{ Ref: topicId }]);
    }
  });

  it('show compaction and verification on the dashboard', () => {
    const body = JSON.stringify(defaults.stack.resolve(only(defaults, 'AWS::CloudWatch::Dashboard').DashboardBody));
    for (const m of ['CompactedDays', 'CompactionFailedDays', 'UncompactedDaysPastThreshold', 'VerifiedObjects', 'VerifyBadObjects']) {
      assert.ok(body.includes(m), `dashboard shows ${m}`);
    }
    assert.ok(body.includes(fnId), 'the maintenance function is on the dashboard');
  });

  it('output the compacted bucket, its destination and the function name', () => {
    const out = defaults.json.Outputs ?? {};
    const compactedId = idOf(defaults, defaults.stack.compacted.bucket);
    assert.deepEqual(out.CompactedBucketName.Value, { Ref: compactedId });
    assert.deepEqual(out.CompactedDestination.Value, { 'Fn::Join': ['', ['s3://', { Ref: compactedId }, '/']] });
    assert.deepEqual(out.MaintenanceFunctionName.Value, { Ref: fnId });
  });
});

describe('maintenance configuration', () => {
  const get = (ctx: Record<string, unknown>) => (key: string) => ctx[key];

  it('has the documented defaults', () => {
    const c = readConfig(get({}));
    assert.equal(c.compactSchedule, 'cron(30 2 * * ? *)');
    assert.equal(c.verifySchedule, 'cron(0 4 ? * SUN *)');
    assert.equal(c.compactLookbackDays, 7);
    assert.equal(c.compactSettleHours, 26);
    assert.equal(c.compactAlarmAfterHours, 74);
    assert.equal(c.compactMaxFileBytes, 268435456);
    assert.equal(c.maintenanceMemorySize, 3008);
    assert.equal(c.compactedExpiryDays, 7 * 366 - 9);
    assert.equal(latestCompactedExpiryDays(7, 7), c.compactedExpiryDays);
  });

  it('rejects values it cannot use, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ compactSchedule: 'daily' }, /context "compactSchedule": expected an EventBridge schedule/],
      [{ verifySchedule: 'cron(0 4 * *)' }, /context "verifySchedule"/],
      [{ compactSettleHours: '12' }, /context "compactSettleHours": expected an integer from 24/],
      [{ compactLookbackDays: '1' }, /context "compactLookbackDays"/],
      [{ compactAlarmAfterHours: '26' }, /context "compactAlarmAfterHours": expected an integer from 27 to 168/],
      [{ compactLookbackDays: '2', compactAlarmAfterHours: '74' }, /context "compactAlarmAfterHours": expected an integer from 27 to 48/],
      [{ compactedExpiryDays: String(7 * 366) }, /context "compactedExpiryDays": expected an integer from 1 to 2553/],
      [{ compactMaxFileBytes: '0' }, /context "compactMaxFileBytes"/],
      [{ maintenanceMemorySize: '20000' }, /context "maintenanceMemorySize"/],
    ];
    for (const [ctx, err] of bad) assert.throws(() => readConfig(get(ctx)), err, JSON.stringify(ctx));
  });
});
