/**
 * Acknowledging cdk-nag (AwsSolutionsChecks) findings: every acknowledgement names one
 * finding and carries the reason it is intended.
 */
import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/** Namespace of the AwsSolutions pack's rules in CDK's validation framework. */
const NAMESPACE = 'AwsSolutions';

/** Acknowledges `finding` (e.g. `AwsSolutions-S1`, `AwsSolutions-IAM5[Resource::*]`) on `scope`. */
export function acknowledge(scope: IConstruct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `${NAMESPACE}::${finding}`, reason });
}

/** How cdk-nag names the ARN of a resource in IAM5 findings: `<LogicalId.Arn>`. */
export function arnFinding(resource: CfnElement): string {
  return `<${Stack.of(resource).resolve(resource.logicalId)}.Arn>`;
}
