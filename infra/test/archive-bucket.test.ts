/** The archive bucket: security, Object Lock, lifecycle classes and expiry. */
import { strict as assert } from 'assert';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { expiryDays } from '../lib/config';
import { archiveBucketId, assertArchiveKeyEncryption, assertPrivateVersioned, build, Built, idOf, only, resourcesOf } from './helpers';

const defaults = build();

function archiveBucket(b: Built): any {
  return b.json.Resources[archiveBucketId(b)]!.Properties;
}

describe('archive bucket', () => {
  it('blocks public access, enforces bucket-owner ownership and versioning', () => {
    const p = archiveBucket(defaults);
    assertPrivateVersioned(p);
    assert.ok(p.LoggingConfiguration.DestinationBucketName.Ref, 'server access logs go to the log bucket');
  });

  it('encrypts with the customer key, which rotates', () => {
    assertArchiveKeyEncryption(defaults, archiveBucket(defaults));
    const keyId = idOf(defaults, defaults.stack.archive.key);
    const key = defaults.json.Resources[keyId]!;
    assert.equal(key.Type, 'AWS::KMS::Key');
    assert.equal(key.Properties.EnableKeyRotation, true);
  });

  it('denies every request without TLS', () => {
    defaults.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: archiveBucketId(defaults) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    // Objects may not be written with another kind of server-side encryption.
    defaults.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: archiveBucketId(defaults) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'DenyOtherEncryption',
            Effect: 'Deny',
            Action: 's3:PutObject',
            Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
          }),
        ]),
      },
    });
    // Every bucket of the stack has such a policy.
    for (const [id] of resourcesOf(defaults, 'AWS::S3::Bucket')) {
      defaults.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        },
      });
    }
  });

  it('locks objects in COMPLIANCE mode for the retention years by default', () => {
    const p = archiveBucket(defaults);
    assert.equal(p.ObjectLockEnabled, true);
    assert.deepEqual(p.ObjectLockConfiguration, {
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 7 } },
    });
  });

  it('takes GOVERNANCE mode and other retention years from context', () => {
    const p = archiveBucket(build({ objectLockMode: 'GOVERNANCE', retentionYears: '10' }));
    assert.deepEqual(p.ObjectLockConfiguration.Rule.DefaultRetention, { Mode: 'GOVERNANCE', Years: 10 });
    assert.equal(p.LifecycleConfiguration.Rules[0].ExpirationInDays, expiryDays(10));
  });

  it('has no Object Lock when turned off, and keeps versioning', () => {
    const p = archiveBucket(build({ objectLockMode: 'off' }));
    assert.equal(p.ObjectLockConfiguration, undefined);
    assert.notEqual(p.ObjectLockEnabled, true);
    assert.deepEqual(p.VersioningConfiguration, { Status: 'Enabled' });
  });

  it('moves data only to classes Athena reads, and expires it after the retention period', () => {
    const rules = archiveBucket(defaults).LifecycleConfiguration.Rules as any[];
    const classes = rules.flatMap((r) => [...(r.Transitions ?? []), ...(r.NoncurrentVersionTransitions ?? [])]).map((t) => t.StorageClass);
    assert.deepEqual(classes.sort(), ['GLACIER_IR', 'STANDARD_IA']);
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
    assert.equal(expiring.length, 1);
    const rule = expiring[0];
    // Never before the lock ends: 7 calendar years are at most 7 * 365 + 2 days.
    assert.ok(rule.ExpirationInDays > 7 * 365 + 2, `expires after ${rule.ExpirationInDays} days`);
    assert.ok(rule.NoncurrentVersionExpiration.NoncurrentDays > 0, 'noncurrent versions are handled');
    assert.equal(rule.AbortIncompleteMultipartUpload.DaysAfterInitiation, 7);
    assert.ok(rules.some((r) => r.ExpiredObjectDeleteMarker === true), 'expired delete markers are removed');
    for (const r of rules) assert.equal(r.Status, 'Enabled');
  });

  it('keeps _rejected/ like data: every rule covers the whole prefix', () => {
    const rules = archiveBucket(defaults).LifecycleConfiguration.Rules as any[];
    for (const r of rules) {
      assert.equal(r.Prefix, 'archive/');
      assert.equal(r.TagFilters, undefined);
      assert.ok('archive/_rejected/year=2026/x.json.gz'.startsWith(r.Prefix));
      assert.ok('archive/invoices/year=2026/x.parquet'.startsWith(r.Prefix));
    }
    const bare = archiveBucket(build({ prefix: '' })).LifecycleConfiguration.Rules as any[];
    for (const r of bare) assert.equal(r.Prefix, undefined, 'no prefix: rules cover the whole bucket');
  });

  it('keeps access logs for the retention period too, in a private TLS-only bucket', () => {
    const logsId = defaults.stack.resolve((defaults.stack.archive.accessLogs.node.defaultChild as any).logicalId) as string;
    const p = defaults.json.Resources[logsId]!.Properties;
    assert.equal(p.LifecycleConfiguration.Rules[0].ExpirationInDays, expiryDays(7));
    assert.equal(p.PublicAccessBlockConfiguration.BlockPublicAcls, true);
    assert.equal(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
  });

  it('retains the bucket and the key when the stack is deleted', () => {
    defaults.template.hasResource('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true }, DeletionPolicy: 'Retain' });
    defaults.template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    assert.ok(only(defaults, 'AWS::KMS::Key'));
  });
});
