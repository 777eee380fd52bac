// The naive baseline: decode the request like our server, build the full Cedar
// request, and call `isAuthorized` with the policy text, so that Cedar parses
// every policy on every call and evaluates all of them: what a first version
// of this server would have done.
import * as grpc from '@grpc/grpc-js';
import { filesToPolicySetSource } from '../../dist/bundle/format/bundle-files.js';
import { readPolicyDirectory } from '../../dist/bundle/format/policy-directory.js';
import { inputToCedarRequest } from '../../dist/pipeline/cedar-request.js';
import { cedar } from '../../dist/cedar/cedar-wasm.js';
import { compileBundle } from '../../dist/bundle/active-bundle.js';
import { denyFor, engineResultToDecision } from '../../dist/pipeline/engine-decision.js';
import { checkRequestToInput } from '../../dist/envoy/check-request.js';
import { decisionToCheckResponse } from '../../dist/envoy/check-response.js';
import { authorizationService } from '../../dist/envoy/protos.js';
import { serveChild } from './child.mjs';

const source = filesToPolicySetSource(await readPolicyDirectory(process.argv[2]), 'baseline');
// Compiled only for the entity store and the annotations that shape answers; evaluation below does not use it.
const bundle = compileBundle(source);
const set = bundle.policySet;
const policyText = source.policies.map((f) => f.text).join('\n');

function check(req) {
  const res = checkRequestToInput(req);
  if (!res.ok) return decisionToCheckResponse(denyFor(res.reason, res.message, set.version));
  const r = inputToCedarRequest(res.input, bundle);
  const answer = cedar.isAuthorized({
    principal: r.principal,
    action: r.action,
    resource: r.resource,
    context: r.context,
    entities: r.entities,
    policies: { staticPolicies: policyText },
  });
  if (answer.type === 'failure')
    return decisionToCheckResponse(
      denyFor('evaluation_error', answer.errors.map((e) => e.message).join('; '), set.version),
    );
  const { decision, diagnostics } = answer.response;
  return decisionToCheckResponse(
    engineResultToDecision(set, { decision, determining: diagnostics.reason, errors: [] }),
  );
}

const server = new grpc.Server();
server.addService(authorizationService().service, { Check: (call, callback) => callback(null, check(call.request)) });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveChild(
    { port, info: { policies: set.policies.size } },
    () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  );
});
