/** Alarms, the alarm topic, the dashboard and the stack outputs. */
import { strict as assert } from 'assert';
import { describe, it } from 'node:test';
import { build, Built, idOf, only, resourcesOf } from './helpers';

const defaults = build();

function alarms(b: Built): any[] {
  return resourcesOf(b, 'AWS::CloudWatch::Alarm').map(([, p]) => p);
}

/** The alarm on a metric of the archiver (its function or its on-failure queue), not of maintenance. */
function alarm(b: Built, namespace: string, metric: string): any {
  const maintenance = [idOf(b, b.stack.maintenance.function), idOf(b, b.stack.maintenance.deadLetterQueue)];
  const found = alarms(b).filter(
    (a) => a.Namespace === namespace && a.MetricName === metric && !maintenance.some((id) => JSON.stringify(a.Dimensions).includes(id)),
  );
  assert.equal(found.length, 1, `one alarm on ${namespace}/${metric}`);
  return found[0];
}

describe('alarms', () => {
  const fnId = defaults.stack.resolve((defaults.stack.archiver.function.node.defaultChild as any).logicalId);
  const topicId = defaults.stack.resolve((defaults.stack.monitoring.topic.node.defaultChild as any).logicalId);

  it('alarm on IteratorAge, errors and throttles of the function', () => {
    const age = alarm(defaults, 'AWS/Lambda', 'IteratorAge');
    assert.equal(age.Statistic, 'Maximum');
    assert.equal(age.Threshold, 15 * 60 * 1000);
    for (const m of ['IteratorAge', 'Errors', 'Throttles']) {
      const a = alarm(defaults, 'AWS/Lambda', m);
      assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: { Ref: fnId } }]);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    }
    assert.equal(alarm(defaults, 'AWS/Lambda', 'Errors').Threshold, 0);
    assert.equal(alarm(defaults, 'AWS/Lambda', 'Throttles').Threshold, 0);
  });

  it('alarm on anything arriving at the on-failure queue', () => {
    const a = alarm(defaults, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible');
    const queueId = defaults.stack.resolve((defaults.stack.source.onFailureQueue.node.defaultChild as any).logicalId);
    assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }]);
    assert.equal(a.Threshold, 0);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
  });

  it('alarm on rejected and failed records from the EMF metrics', () => {
    for (const m of ['RecordsRejected', 'RecordsFailed']) {
      const a = alarm(defaults, 'DdbArchiver', m);
      assert.equal(a.Statistic, 'Sum');
      assert.equal(a.Threshold, 0);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
      assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: { Ref: fnId } }]);
      assert.equal(a.TreatMissingData, 'notBreaching');
    }
  });

  it('notify the encrypted, TLS-only alarm topic, and an e-mail address when given', () => {
    assert.equal(alarms(defaults).length, 11);
    for (const a of alarms(defaults)) assert.deepEqual(a.AlarmActions, [{ Ref: topicId }]);
    const topic = only(defaults, 'AWS::SNS::Topic');
    assert.ok(topic.KmsMasterKeyId, 'the topic is encrypted');
    defaults.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: [{ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] },
    });
    const withEmail = build({ alarmEmail: 'ops@example.com' });
    assert.deepEqual(only(withEmail, 'AWS::SNS::Subscription').Protocol, 'email');
    assert.equal(only(withEmail, 'AWS::SNS::Subscription').Endpoint, 'ops@example.com');
    // CloudWatch may use the key to publish to the encrypted topic.
    const key = only(defaults, 'AWS::KMS::Key');
    assert.ok(
      key.KeyPolicy.Statement.some((s: any) => s.Principal?.Service === 'cloudwatch.amazonaws.com'),
      'the key lets CloudWatch publish',
    );
  });

  it('can notify an existing topic instead', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:ops-alarms';
    const b = build({ alarmTopicArn: arn });
    assert.equal(resourcesOf(b, 'AWS::SNS::Topic').length, 0);
    for (const a of alarms(b)) assert.deepEqual(a.AlarmActions, [arn]);
  });
});

describe('dashboard and outputs', () => {
  it('has a dashboard showing the EMF metrics', () => {
    const d = only(defaults, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(defaults.stack.resolve(d.DashboardBody));
    for (const m of ['RecordsArchived', 'RecordsRejected', 'RecordsFailed', 'FilesWritten', 'BytesWritten', 'StreamLagMs', 'DurationMs', 'IteratorAge']) {
      assert.ok(body.includes(m), `dashboard shows ${m}`);
    }
  });

  it('outputs the bucket, workgroup, database and table names', () => {
    const out = defaults.json.Outputs ?? {};
    for (const k of ['ArchiveBucketName', 'ArchiveDestination', 'AthenaWorkGroupName', 'AthenaResultsBucketName', 'GlueDatabaseName', 'GlueTableNames', 'FunctionName', 'OnFailureQueueUrl', 'AlarmTopicArn', 'DashboardName', 'DemoTableName']) {
      assert.ok(out[k], `output ${k}`);
    }
    assert.equal(out.GlueTableNames.Value, 'invoices');
    assert.equal(out.GlueDatabaseName.Value, 'ddb_archive');
  });
});
