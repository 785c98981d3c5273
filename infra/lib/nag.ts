// Acknowledging cdk-nag findings with aws-cdk-lib's own `Validations` API (cdk-nag 3 reads the
// acknowledgements from construct metadata), so the construct library itself does not depend on
// cdk-nag. Every acknowledgement carries the reason a reviewer needs; README.md lists them all.

import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges one rule (or one finding `Rule[finding]`) on a construct and its children. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges the AwsSolutions-IAM5 finding a wildcard resource raises. The finding id is the
 * resource as cdk-nag prints it: CloudFormation references flattened to `<Ref>` / `<Res.Attr>`.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  const flat = flatten(Stack.of(scope).resolve(resource));
  acknowledge(scope, `AwsSolutions-IAM5[Resource::${flat}]`, reason);
}

/** Acknowledges the AwsSolutions-IAM5 finding for a wildcard action such as `kms:GenerateDataKey*`. */
export function acknowledgeWildcardAction(scope: IConstruct, action: string, reason: string): void {
  acknowledge(scope, `AwsSolutions-IAM5[Action::${action}]`, reason);
}

/** Acknowledges the AwsSolutions-IAM4 finding for an AWS managed policy attached under `scope`. */
export function acknowledgeManagedPolicy(scope: IConstruct, policyName: string, reason: string): void {
  // CDK renders managed policy ARNs with the partition as a reference, or as a literal in
  // stacks whose region is known: acknowledge the finding in whichever form it takes.
  const stack = Stack.of(scope);
  const partitions = new Set(['<AWS::Partition>', flatten(stack.resolve(stack.partition))]);
  for (const partition of partitions) {
    acknowledge(scope, `AwsSolutions-IAM4[Policy::arn:${partition}:iam::aws:policy/${policyName}]`, reason);
  }
}

/** The same flattening cdk-nag applies to a resolved CloudFormation value. */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}
