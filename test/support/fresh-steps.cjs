// Run by test/cold-load.test.ts in a fresh `node --import tsx` process: loads one engine's entry
// point (TypeScript source), runs the events read from stdin through its handler in order, and
// after each step prints which driver packages Node has loaded so far (from require.cache).
const entry = process.argv[2];
const watched = process.argv.slice(3);
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', async () => {
  const loaded = () => watched.filter((p) => Object.keys(require.cache).some((f) => f.includes(`/node_modules/${p}/`)));
  const m = require(entry);
  const out = [{ after: 'load', loaded: loaded() }];
  for (const event of JSON.parse(input)) {
    let error = null;
    try {
      await m.handler(event);
    } catch (e) {
      error = e && e.code ? e.code : String(e && e.name);
    }
    out.push({ after: event.Step, error, loaded: loaded() });
  }
  process.stdout.write('STEPS ' + JSON.stringify(out) + '\n');
  process.exit(0);
});
