// The baseline of bench/fabric.py: submit the same chaincode transactions through Fabric's official Node client
// (@hyperledger/fabric-gateway), one at a time and with several workers in flight, and print what it measured.
//
//   node bench.mjs plan.json    (plan: peer, tlsCa, mspId, cert, key, channel, chaincode, sequential, workers)
import { readFile } from 'node:fs/promises';
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';

const plan = JSON.parse(await readFile(process.argv[2], 'utf8'));
const client = new grpc.Client(plan.peer, grpc.credentials.createSsl(await readFile(plan.tlsCa)), {});
const deadline = (seconds) => () => ({ deadline: Date.now() + seconds * 1000 });
const gateway = connect({
  client,
  identity: { mspId: plan.mspId, credentials: await readFile(plan.cert) },
  signer: signers.newPrivateKeySigner(crypto.createPrivateKey(await readFile(plan.key))),
  hash: hash.sha256,
  evaluateOptions: deadline(30),
  endorseOptions: deadline(30),
  submitOptions: deadline(30),
  commitStatusOptions: deadline(60),
});
const contract = gateway.getNetwork(plan.channel).getContract(plan.chaincode);

async function submit([op, consent]) {
  const started = performance.now();
  await contract.submitTransaction(plan.function, op, consent);
  return performance.now() - started;
}

async function run(queues) {
  const started = performance.now();
  const latencies = (await Promise.all(queues.map(async (queue) => {
    const mine = [];
    for (const args of queue) mine.push(await submit(args));
    return mine;
  }))).flat();
  return { seconds: (performance.now() - started) / 1000, count: latencies.length, latencies_ms: latencies };
}

try {
  await run([plan.warmup]);
  const sequential = await run([plan.sequential]);
  const concurrent = await run(plan.workers);
  console.log(JSON.stringify({ sequential, concurrent }));
} finally {
  gateway.close();
  client.close();
}
