/**
 * Test helpers: build the stack from context the way bin/app.ts does (with cdk-nag's
 * AwsSolutionsChecks), against a placeholder function binary and the fixture schemas.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, CfnElement, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { ArchiverStack } from '../lib/archiver-stack';
import { configFromContext } from '../lib/config';

/** The fixture schemas directory (source tree, next to the compiled tests' sources). */
export const FIXTURE_SCHEMAS = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'schemas');

let fakeFunctionDir: string | undefined;

/** A directory with a placeholder `bootstrap`: these tests check the template, not the binary. */
export function fakeFunction(): string {
  if (fakeFunctionDir === undefined) {
    fakeFunctionDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddb-archiver-test-fn-'));
    fs.writeFileSync(path.join(fakeFunctionDir, 'bootstrap'), '#!/bin/sh\necho placeholder\n');
  }
  return fakeFunctionDir;
}

/** A synthesized stack and its template. */
export interface Built {
  readonly app: App;
  readonly stack: ArchiverStack;
  readonly template: Template;
  readonly json: { Resources: Record<string, { Type: string; Properties?: any; DependsOn?: unknown }>; Outputs?: Record<string, any> };
  readonly outdir: string;
}

/** Builds and synthesizes the stack with `context` (plus the test function and schemas). */
export function build(context: Record<string, unknown> = {}, mutate?: (stack: ArchiverStack) => void): Built {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddb-archiver-test-out-'));
  const app = new App({
    outdir,
    context: { functionAssetDir: fakeFunction(), schemasDir: FIXTURE_SCHEMAS, ...context },
  });
  const stack = new ArchiverStack(app, 'Test', { config: configFromContext(app.node) });
  mutate?.(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as Built['json'], outdir };
}

/** Resources of one type in a template, by logical id. */
export function resourcesOf(b: Built, type: string): [string, any][] {
  return Object.entries(b.json.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties ?? {}]);
}

/** The single resource of a type. */
export function only(b: Built, type: string): any {
  const all = resourcesOf(b, type);
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0]![1];
}

/** The logical id of a construct's CloudFormation resource. */
export function idOf(b: Built, construct: IConstruct): string {
  return b.stack.resolve((construct.node.defaultChild as CfnElement).logicalId) as string;
}

/** The logical id of the archive bucket. */
export function archiveBucketId(b: Built): string {
  return idOf(b, b.stack.archive.bucket);
}

/** Every IAM statement attached to a function's role (which must have no managed policies). */
export function roleStatements(b: Built, fn: lambda.IFunction): any[] {
  const roleId = idOf(b, fn.role!);
  const out: any[] = [];
  for (const [, p] of resourcesOf(b, 'AWS::IAM::Policy')) {
    if ((p.Roles as any[]).some((r) => r.Ref === roleId)) out.push(...p.PolicyDocument.Statement);
  }
  const role = b.json.Resources[roleId]!.Properties;
  for (const p of role.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  if ((role.ManagedPolicyArns ?? []).length > 0) throw new Error('the function role has managed policies');
  return out;
}

/** Every IAM statement attached to the archiver function's role. */
export function functionStatements(b: Built): any[] {
  return roleStatements(b, b.stack.archiver.function);
}

/** Actions of a statement as a list. */
export function actionsOf(statement: any): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** Asserts that a bucket blocks public access and enforces bucket-owner ownership and versioning. */
export function assertPrivateVersioned(bucket: any): void {
  assert.deepEqual(bucket.PublicAccessBlockConfiguration, {
    BlockPublicAcls: true,
    BlockPublicPolicy: true,
    IgnorePublicAcls: true,
    RestrictPublicBuckets: true,
  });
  assert.deepEqual(bucket.OwnershipControls, { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
  assert.deepEqual(bucket.VersioningConfiguration, { Status: 'Enabled' });
}

/** Asserts that a bucket encrypts with the archive key (SSE-KMS with a bucket key). */
export function assertArchiveKeyEncryption(b: Built, bucket: any): void {
  const keyId = idOf(b, b.stack.archive.key);
  assert.deepEqual(bucket.BucketEncryption.ServerSideEncryptionConfiguration, [
    { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } },
  ]);
}
