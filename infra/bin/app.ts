#!/usr/bin/env node
/**
 * The CDK app: one ddb-archiver stack, configured from context (see README "Deploy"),
 * checked by cdk-nag's AwsSolutionsChecks during synthesis.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ArchiverStack } from '../lib/archiver-stack';
import { configFromContext } from '../lib/config';

const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'DdbArchiver';
new ArchiverStack(app, stackName, {
  config: configFromContext(app.node),
  description: 'ddb-archiver: archives DynamoDB changes to S3 for Athena',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
