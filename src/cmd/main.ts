// Entry point of the `nimbus` command (bin/nimbus.js → dist/nimbus.mjs). The CLI is an HTTP
// client of the API; only `serve` runs the node, so only it pulls in the server parts.
import { runCli } from '../cli/index.js';
import { type NimbusNode, startNimbus } from './serve.js';

const code = await runCli(process.argv.slice(2), {
  async serve(options) {
    const node = await startNimbus({ ...options, examples: options.examples });
    await printBanner(node);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    console.log('nimbus: draining in-flight requests and stopping instances…');
    await node.close();
    console.log('nimbus: stopped');
  },
});
process.exitCode = code;

async function printBanner(node: NimbusNode): Promise<void> {
  console.log(`Nimbus is listening on ${node.url}  (API ${node.url}/api/v1, health ${node.url}/healthz)`);
  if (node.sandbox && !node.sandbox.sandboxed) {
    console.log(
      `WARNING: instances run UNSANDBOXED: ${node.sandbox.warnings.join('; ')} (use --require-sandbox to refuse instead)`,
    );
  }
  const res = await fetch(`${node.url}/api/v1/functions`);
  const { functions } = (await res.json()) as { functions: { name: string; latestRevision: string; url: string }[] };
  if (functions.length === 0) console.log('No functions yet: deploy one with `npx nimbus deploy DIR`.');
  for (const fn of functions) console.log(`  ${fn.name.padEnd(16)} ${fn.latestRevision.padEnd(4)} ${fn.url}`);
  // Show an example answering, so a newcomer sees the whole path work end to end.
  const hello = functions.find((f) => f.name === 'hello');
  if (hello && node.examples.length > 0) {
    const answer = await fetch(hello.url).then(
      (r) => r.text(),
      (e) => `(no answer: ${e.message})`,
    );
    console.log(`\n$ curl ${hello.url}\n${answer.trim()}\n`);
  }
}
