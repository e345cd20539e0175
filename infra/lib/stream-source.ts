/**
 * The stream the archiver reads: a DynamoDB stream (of an existing table, or of a demo
 * table created here with NEW_AND_OLD_IMAGES) or a Kinesis data stream carrying DynamoDB
 * changes, wired to the function by an event source mapping that never drops a batch
 * silently: bounded retries, bisection, partial batch responses, and an on-failure queue.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from './nag';

/** Settings of the stream source. */
export interface StreamSourceProps {
  /** The archiver function. */
  readonly function: lambda.Function;
  /** Stream ARN of an existing DynamoDB table. */
  readonly streamArn?: string;
  /** ARN of a Kinesis data stream carrying DynamoDB changes. */
  readonly kinesisStreamArn?: string;
  /** Customer-managed KMS key of the Kinesis stream. */
  readonly kinesisKeyArn?: string;
  /** Name of the demo table created when no stream is given. */
  readonly demoTableName: string;
  /** `BatchSize`. */
  readonly batchSize: number;
  /** `MaximumBatchingWindowInSeconds`. */
  readonly batchingWindowSeconds: number;
  /** `ParallelizationFactor`. */
  readonly parallelizationFactor: number;
  /** `MaximumRetryAttempts`. */
  readonly retryAttempts: number;
  /** `MaximumRecordAgeInSeconds`. */
  readonly maxRecordAgeSeconds: number;
}

/** The source stream, the event source mapping and its on-failure queue. */
export class StreamSource extends Construct {
  /** The demo table, when the stack created one. */
  public readonly demoTable?: dynamodb.Table;
  /** The stream ARN read by the function. */
  public readonly eventSourceArn: string;
  /** `dynamodb` or `kinesis`. */
  public readonly kind: 'dynamodb' | 'kinesis';
  /** Receives a description of every batch that could not be archived. */
  public readonly onFailureQueue: sqs.Queue;
  /** The event source mapping. */
  public readonly mapping: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: StreamSourceProps) {
    super(scope, id);
    const fn = props.function;

    if (props.kinesisStreamArn !== undefined) {
      this.kind = 'kinesis';
      this.eventSourceArn = props.kinesisStreamArn;
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadKinesisStream',
          actions: [
            'kinesis:DescribeStream',
            'kinesis:DescribeStreamSummary',
            'kinesis:GetRecords',
            'kinesis:GetShardIterator',
            'kinesis:ListShards',
            'kinesis:SubscribeToShard',
          ],
          resources: [props.kinesisStreamArn],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ListKinesisStreams',
          actions: ['kinesis:ListStreams'],
          resources: ['*'],
        }),
      );
      acknowledge(
        fn.role ?? fn,
        'AwsSolutions-IAM5[Resource::*]',
        'kinesis:ListStreams is an account-level action that has no resource to scope it to; every stream action is on the one stream.',
      );
      if (props.kinesisKeyArn !== undefined) {
        fn.addToRolePolicy(
          new iam.PolicyStatement({ sid: 'DecryptKinesisStream', actions: ['kms:Decrypt'], resources: [props.kinesisKeyArn] }),
        );
      }
    } else {
      this.kind = 'dynamodb';
      if (props.streamArn !== undefined) {
        this.eventSourceArn = props.streamArn;
      } else {
        this.demoTable = new dynamodb.Table(this, 'DemoTable', {
          tableName: props.demoTableName,
          partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
          billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
          stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
          pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
          encryption: dynamodb.TableEncryption.AWS_MANAGED,
          removalPolicy: RemovalPolicy.RETAIN,
        });
        const arn = this.demoTable.tableStreamArn;
        if (arn === undefined) throw new Error('the demo table has no stream');
        this.eventSourceArn = arn;
      }
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadDynamoDbStream',
          actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
          resources: [this.eventSourceArn],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'ListDynamoDbStreams', actions: ['dynamodb:ListStreams'], resources: ['*'] }),
      );
      acknowledge(
        fn.role ?? fn,
        'AwsSolutions-IAM5[Resource::*]',
        'dynamodb:ListStreams, which the event source mapping requires, is an account-level action that has no resource to scope it to; every stream read action is on the one stream.',
      );
    }

    this.onFailureQueue = new sqs.Queue(this, 'OnFailure', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.onFailureQueue,
      'AwsSolutions-SQS3',
      'This queue is itself the on-failure destination (dead-letter) of the event source mapping.',
    );

    this.mapping = new lambda.EventSourceMapping(this, 'Mapping', {
      target: fn,
      eventSourceArn: this.eventSourceArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: props.batchSize,
      maxBatchingWindow: Duration.seconds(props.batchingWindowSeconds),
      parallelizationFactor: props.parallelizationFactor,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: props.retryAttempts,
      maxRecordAge: Duration.seconds(props.maxRecordAgeSeconds),
      onFailure: new sources.SqsDlq(this.onFailureQueue),
    });
    // The mapping starts reading only after the role can read the stream and send to the queue.
    const policy = fn.role?.node.tryFindChild('DefaultPolicy');
    if (policy !== undefined) this.mapping.node.addDependency(policy);
  }
}
