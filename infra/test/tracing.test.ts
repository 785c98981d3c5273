// X-Ray active tracing: off by default, on for every function with `functions.tracing`, with
// the X-Ray grants CDK adds and cdk-nag's wildcard finding acknowledged.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsSolutionsChecks } from 'cdk-nag';
import { existingResources } from './fixtures';
import { policyStatements, resourcesOfType } from './support';

type Json = Record<string, any>;

function functions(json: Json): [string, any][] {
  return resourcesOfType(json, 'AWS::Lambda::Function').filter(([, r]) =>
    String(r.Properties.Description ?? '').length > 0 && r.Properties.Environment?.Variables?.RUST_LOG,
  );
}

function xrayActions(json: Json): Set<string> {
  const out = new Set<string>();
  for (const { statement } of policyStatements(json)) {
    for (const action of [statement.Action].flat()) if (String(action).startsWith('xray:')) out.add(action);
  }
  return out;
}

describe('X-Ray active tracing', () => {
  test('is off by default: no TracingConfig, no X-Ray grant', () => {
    const { json } = existingResources();
    const fns = functions(json);
    assert.ok(fns.length >= 2, 'the jobrunner functions are found');
    for (const [id, r] of fns) assert.equal(r.Properties.TracingConfig, undefined, id);
    assert.deepEqual([...xrayActions(json)], []);
  });

  test('functions.tracing turns it on for every function, with the X-Ray grants', () => {
    const { json, stack } = existingResources((p) => ({ ...p, functions: { ...p.functions, tracing: true } }));
    const fns = functions(json);
    assert.ok(fns.length >= 2);
    for (const [id, r] of fns) assert.deepEqual(r.Properties.TracingConfig, { Mode: 'Active' }, id);
    assert.deepEqual([...xrayActions(json)].sort(), ['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    // The IAM rules (the fixture's own task definitions raise unrelated findings).
    const violations = new AwsSolutionsChecks(stack)
      .validateScope(stack)
      .violations.filter((v) => v.ruleName.startsWith('AwsSolutions-IAM'))
      .map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    assert.deepEqual(violations, []);
  });
});
