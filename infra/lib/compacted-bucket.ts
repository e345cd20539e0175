/**
 * The compacted layer: a bucket of its own for the few large, ordered, deduplicated Parquet
 * files (and a manifest) per table-day that `ddb-archiver compact` makes from the raw
 * archive. It is a derived copy that can be rebuilt from the raw archive at any time, so it
 * has no Object Lock (compaction replaces a day's files when the day's raw objects change);
 * it shares the archive's key and security settings, keeps replaced versions a short while,
 * only moves data to classes Athena reads, and expires no later than the raw archive.
 */
import { Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { denyOtherEncryption, privateKmsBucket } from './archive-bucket';

/** Settings of the compacted-layer bucket. */
export interface CompactedBucketProps {
  /** The archive's key. */
  readonly key: kms.IKey;
  /** The bucket receiving server access logs. */
  readonly accessLogs: s3.IBucket;
  /** Days before compacted objects move to Standard-IA (as the raw archive). */
  readonly infrequentAccessAfterDays: number;
  /** Days before compacted objects move to Glacier Instant Retrieval (as the raw archive). */
  readonly glacierInstantRetrievalAfterDays: number;
  /** Days after which compacted objects expire. */
  readonly expiryDays: number;
}

/** Days a replaced (noncurrent) compacted version is kept: enough to look at what a re-compaction replaced. */
export const COMPACTED_NONCURRENT_VERSION_DAYS = 7;

/** Minimum storage duration billed by each class a compacted object may move to. */
const MINIMUM_DAYS: [s3.StorageClass, number][] = [
  [s3.StorageClass.INFREQUENT_ACCESS, 30],
  [s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, 90],
];

/**
 * The transitions worth making before `expiry`: a move is made only when the object then
 * stays in the class at least the class's minimum billed duration (S3 also refuses a
 * transition at or after the expiration).
 */
export function transitionsBefore(expiry: number, afterDays: [number, number]): s3.Transition[] {
  return MINIMUM_DAYS.map(([storageClass, minimum], i) => ({ storageClass, after: afterDays[i]!, minimum }))
    .filter((t) => t.after + t.minimum <= expiry)
    .map((t) => ({ storageClass: t.storageClass, transitionAfter: Duration.days(t.after) }));
}

/** The compacted-layer bucket. */
export class CompactedBucket extends Construct {
  /** The bucket. */
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: CompactedBucketProps) {
    super(scope, id);

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...privateKmsBucket(props.key, props.accessLogs, 'compacted-bucket/'),
      // Versioned, so that a re-compaction's replaced files and manifest stay recoverable for a while.
      versioned: true,
      lifecycleRules: [
        {
          // Everything: table trees and manifests alike.
          id: 'compacted-tiering-and-expiry',
          transitions: transitionsBefore(props.expiryDays, [
            props.infrequentAccessAfterDays,
            props.glacierInstantRetrievalAfterDays,
          ]),
          expiration: Duration.days(props.expiryDays),
          noncurrentVersionExpiration: Duration.days(COMPACTED_NONCURRENT_VERSION_DAYS),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          id: 'remove-expired-delete-markers',
          expiredObjectDeleteMarker: true,
        },
      ],
    });
    denyOtherEncryption(this.bucket);
  }
}
