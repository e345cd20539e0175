/**
 * Monitoring: alarms on the stream falling behind (IteratorAge), function errors and
 * throttles, any batch reaching the on-failure queue, and the archiver's own EMF metrics
 * (rejected and failed records); for maintenance, on days left uncompacted, failed
 * compactions, objects failing verification, its errors and its dead-letter queue; all
 * sent to an SNS topic; and a small dashboard.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Namespace of the function's EMF metrics. */
export const METRICS_NAMESPACE = 'DdbArchiver';

/** Settings of the monitoring. */
export interface MonitoringProps {
  /** The archiver function. */
  readonly function: lambda.IFunction;
  /** The on-failure queue of the event source mapping. */
  readonly onFailureQueue: sqs.IQueue;
  /** The maintenance function (compaction, verification). */
  readonly maintenanceFunction: lambda.IFunction;
  /** The dead-letter queue of the maintenance schedules. */
  readonly maintenanceDeadLetterQueue: sqs.IQueue;
  /** Key for the alarm topic (CloudWatch is allowed to use it). */
  readonly key: kms.Key;
  /** IteratorAge above this many milliseconds raises the alarm. */
  readonly iteratorAgeThresholdMs: number;
  /** E-mail address subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  /** Existing topic for the alarms, instead of a new one. */
  readonly alarmTopicArn?: string;
}

/** The alarms, their topic and the dashboard. */
export class Monitoring extends Construct {
  /** The topic the alarms notify. */
  public readonly topic: sns.ITopic;
  /** The alarms, by name. */
  public readonly alarms: Map<string, cloudwatch.Alarm> = new Map();
  /** The dashboard. */
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const fn = props.function;

    if (props.alarmTopicArn !== undefined) {
      this.topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    } else {
      const topic = new sns.Topic(this, 'AlarmTopic', {
        displayName: 'ddb-archiver alarms',
        masterKey: props.key,
        enforceSSL: true,
      });
      props.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
      );
      this.topic = topic;
    }
    if (props.alarmEmail !== undefined) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const fiveMinutes = { period: Duration.minutes(5) };
    const oneDay = { period: Duration.days(1) };
    const metricOf =
      (f: lambda.IFunction, defaultPeriod: { period: Duration }) =>
      (metricName: string, statistic: string, period = defaultPeriod): cloudwatch.Metric =>
        new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName,
          dimensionsMap: { FunctionName: f.functionName },
          statistic,
          ...period,
        });
    const emf = metricOf(fn, fiveMinutes);
    // The maintenance function runs once a day (compaction) or once a week (verification):
    // its metrics are looked at per day, so an alarm stays raised until the next run.
    const maintenance = props.maintenanceFunction;
    const maintenanceEmf = metricOf(maintenance, oneDay);

    const above = (
      name: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      treatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ): void => {
      const alarm = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        datapointsToAlarm: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData,
        alarmDescription: description,
      });
      alarm.addAlarmAction(new actions.SnsAction(this.topic));
      alarm.addOkAction(new actions.SnsAction(this.topic));
      this.alarms.set(name, alarm);
    };

    above(
      'IteratorAge',
      fn.metric('IteratorAge', { statistic: 'Maximum', ...fiveMinutes }),
      props.iteratorAgeThresholdMs,
      'The archiver is falling behind the stream: the oldest record of a batch is getting old.',
    );
    above('Errors', fn.metricErrors({ statistic: 'Sum', ...fiveMinutes }), 0, 'The archiver function failed.');
    above('Throttles', fn.metricThrottles({ statistic: 'Sum', ...fiveMinutes }), 0, 'The archiver function was throttled.');
    above(
      'OnFailureQueue',
      props.onFailureQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', ...fiveMinutes }),
      0,
      'A batch could not be archived after all retries: its description is in the on-failure queue. Re-read it from the stream before the stream expires it.',
    );
    above(
      'RecordsRejected',
      emf('RecordsRejected', 'Sum'),
      0,
      'Records could not be archived as changes and were kept under _rejected/ with the reason.',
    );
    above('RecordsFailed', emf('RecordsFailed', 'Sum'), 0, 'Records failed to be written and were reported back for retry.');

    above(
      'UncompactedDays',
      maintenanceEmf('UncompactedDaysPastThreshold', 'Maximum'),
      0,
      'Closed days are still not compacted long after their end (COMPACT_ALARM_AFTER_HOURS), or the daily compaction has not reported for a day: is its schedule running?',
      // The compaction reports every day: no report for a day means it is not running.
      cloudwatch.TreatMissingData.BREACHING,
    );
    above(
      'CompactionFailedDays',
      maintenanceEmf('CompactionFailedDays', 'Sum'),
      0,
      'Days could not be compacted; the next daily run retries them while they are in the lookback window. The raw archive is unaffected.',
    );
    above(
      'VerifyBadObjects',
      maintenanceEmf('VerifyBadObjects', 'Sum'),
      0,
      'Verification found archived or compacted objects that cannot be read back intact: see the maintenance function log.',
    );
    above('MaintenanceErrors', maintenance.metricErrors({ statistic: 'Sum', ...fiveMinutes }), 0, 'The maintenance function failed.');
    above(
      'MaintenanceDeadLetters',
      props.maintenanceDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', ...fiveMinutes }),
      0,
      'A compaction or verification run failed after all retries, or its schedule could not invoke the function: the event is in the dead-letter queue.',
    );

    const w = 8;
    const graph = (title: string, left: cloudwatch.IMetric[], right?: cloudwatch.IMetric[]): cloudwatch.GraphWidget =>
      new cloudwatch.GraphWidget({ title, width: w, left, right });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      widgets: [
        [
          graph('Records', [emf('RecordsArchived', 'Sum'), emf('RecordsRejected', 'Sum'), emf('RecordsFailed', 'Sum')]),
          graph('Files and bytes written', [emf('FilesWritten', 'Sum')], [emf('BytesWritten', 'Sum')]),
          graph('Lag (ms)', [fn.metric('IteratorAge', { statistic: 'Maximum', ...fiveMinutes }), emf('StreamLagMs', 'Maximum')]),
        ],
        [
          graph('Duration (ms)', [emf('DurationMs', 'Average'), emf('DurationMs', 'Maximum')]),
          graph('Function errors and throttles', [
            fn.metricErrors(fiveMinutes),
            fn.metricThrottles(fiveMinutes),
            fn.metricInvocations(fiveMinutes),
          ]),
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            width: w,
            alarms: [...this.alarms.values()],
          }),
        ],
        [
          graph('Compaction (days, per day)', [
            maintenanceEmf('CompactedDays', 'Sum'),
            maintenanceEmf('CompactionFailedDays', 'Sum'),
            maintenanceEmf('UncompactedDaysPastThreshold', 'Maximum'),
          ]),
          graph('Verification (objects, per day)', [maintenanceEmf('VerifiedObjects', 'Sum')], [maintenanceEmf('VerifyBadObjects', 'Sum')]),
          graph(
            'Maintenance function',
            [maintenance.metricErrors(oneDay), maintenance.metricInvocations(oneDay)],
            [maintenance.metricDuration({ statistic: 'Maximum', ...oneDay })],
          ),
        ],
      ],
    });
  }
}
