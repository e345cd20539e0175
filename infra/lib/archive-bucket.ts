/**
 * The archive bucket: a customer KMS key (rotated), versioning, Object Lock with a default
 * retention of the retention period, Block Public Access, a TLS-only bucket policy, access
 * logs, and a lifecycle that only moves data to classes Athena still reads (Standard-IA,
 * Glacier Instant Retrieval) and expires it after the retention period.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { expiryDays, ObjectLockMode } from './config';

/** Settings of the archive bucket. */
export interface ArchiveBucketProps {
  /** Years archived objects are locked and kept. */
  readonly retentionYears: number;
  /** Object Lock mode (`OFF`: versioning only, no lock). */
  readonly objectLockMode: ObjectLockMode;
  /** Key prefix the archiver writes under (`<prefix><table>/…`, `<prefix>_rejected/…`). */
  readonly prefix: string;
  /** Days before archived objects move to Standard-IA. */
  readonly infrequentAccessAfterDays: number;
  /** Days before archived objects move to Glacier Instant Retrieval. */
  readonly glacierInstantRetrievalAfterDays: number;
}

/**
 * Days a noncurrent version is kept after it became noncurrent (the archiver never
 * overwrites, so versions become noncurrent only through the expiry's delete marker or a
 * manual delete). Object Lock still blocks removing a version before its retention ends.
 */
export const NONCURRENT_VERSION_DAYS = 30;

/**
 * The security settings every KMS-encrypted bucket of the stack shares: the customer key
 * with a bucket key, Block Public Access, TLS-only (1.2 and later), bucket-owner-enforced
 * ownership, server access logs under `logsPrefix`, and kept when the stack is deleted.
 */
export function privateKmsBucket(key: kms.IKey, accessLogs: s3.IBucket, logsPrefix: string): s3.BucketProps {
  return {
    encryption: s3.BucketEncryption.KMS,
    encryptionKey: key,
    bucketKeyEnabled: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: logsPrefix,
    removalPolicy: RemovalPolicy.RETAIN,
  };
}

/**
 * Denies any put that asks for another kind of server-side encryption than SSE-KMS: objects
 * are written with the bucket's key (or the bucket default, which is that key).
 */
export function denyOtherEncryption(bucket: s3.Bucket): void {
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyOtherEncryption',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects('*')],
      conditions: {
        StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' },
      },
    }),
  );
}

/** The encrypted, locked archive bucket, its key, and the access-log bucket. */
export class ArchiveBucket extends Construct {
  /** The customer-managed key encrypting the archive and the Athena results. */
  public readonly key: kms.Key;
  /** The archive bucket. */
  public readonly bucket: s3.Bucket;
  /** The bucket receiving server access logs of the archive and results buckets. */
  public readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArchiveBucketProps) {
    super(scope, id);

    this.key = new kms.Key(this, 'Key', {
      description: 'ddb-archiver: encrypts the DynamoDB change archive and its Athena results',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Server access logs cannot go to an SSE-KMS bucket; S3-managed keys are the supported choice.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(expiryDays(props.retentionYears)),
          noncurrentVersionExpiration: Duration.days(NONCURRENT_VERSION_DAYS),
        },
      ],
    });

    const retention = Duration.days(1); // replaced below by whole years on the L1 resource
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...privateKmsBucket(this.key, this.accessLogs, 'archive-bucket/'),
      versioned: true,
      objectLockEnabled: props.objectLockMode !== 'OFF',
      objectLockDefaultRetention:
        props.objectLockMode === 'COMPLIANCE'
          ? s3.ObjectLockRetention.compliance(retention)
          : props.objectLockMode === 'GOVERNANCE'
            ? s3.ObjectLockRetention.governance(retention)
            : undefined,
      lifecycleRules: [
        {
          // One rule for everything under the prefix: table trees and `_rejected/` alike.
          id: 'archive-tiering-and-expiry',
          prefix: props.prefix === '' ? undefined : props.prefix,
          transitions: [
            {
              storageClass: s3.StorageClass.INFREQUENT_ACCESS,
              transitionAfter: Duration.days(props.infrequentAccessAfterDays),
            },
            {
              storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
              transitionAfter: Duration.days(props.glacierInstantRetrievalAfterDays),
            },
          ],
          expiration: Duration.days(expiryDays(props.retentionYears)),
          noncurrentVersionExpiration: Duration.days(NONCURRENT_VERSION_DAYS),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        {
          id: 'remove-expired-delete-markers',
          prefix: props.prefix === '' ? undefined : props.prefix,
          expiredObjectDeleteMarker: true,
        },
      ],
    });
    if (props.objectLockMode !== 'OFF') {
      const cfn = this.bucket.node.defaultChild as s3.CfnBucket;
      cfn.objectLockConfiguration = {
        objectLockEnabled: 'Enabled',
        rule: { defaultRetention: { mode: props.objectLockMode, years: props.retentionYears } },
      };
    }

    // Nobody may weaken the lock or the encryption of what is written.
    denyOtherEncryption(this.bucket);
  }
}
