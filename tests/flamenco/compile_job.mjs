// Loads farm/flamenco/oris_lipsync.js as Flamenco's Manager would (a script defining JOB_TYPE and compileJob,
// run with a global `author`), against a recorder of the documented author API (author.Task, author.Command,
// task.addCommand, task.addDependency, job.addTask), and prints what compileJob authored as JSON.
// This checks the job compiler, not a running Flamenco Manager.
//   node tests/flamenco/compile_job.mjs SETTINGS_JSON
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import vm from "node:vm";

const here = dirname(fileURLToPath(import.meta.url));
const source = readFileSync(join(here, "..", "..", "farm", "flamenco", "oris_lipsync.js"), "utf8");

const tasks = [];
const author = {
    Task(name, type) {
        const task = { name, type, commands: [], dependencies: [] };
        task.addCommand = (command) => task.commands.push(command);
        task.addDependency = (other) => task.dependencies.push(other.name);
        return task;
    },
    Command(type, parameters) {
        return { type, parameters };
    },
};
const context = vm.createContext({ author, print: () => {} });
vm.runInContext(source + "\n;globalThis.JOB_TYPE = JOB_TYPE; globalThis.compileJob = compileJob;", context);

// the settings a submission would carry: the job type's defaults, then the given values
const given = JSON.parse(process.argv[2] || "{}");
const settings = {};
for (const s of context.JOB_TYPE.settings) {
    if (s.default !== undefined) settings[s.key] = s.default;
}
Object.assign(settings, given);
const missing = context.JOB_TYPE.settings.filter((s) => s.required && settings[s.key] === undefined).map((s) => s.key);
if (missing.length) {
    console.error(`missing required settings: ${missing.join(", ")}`);
    process.exit(2);
}
context.compileJob({ settings, addTask: (task) => tasks.push(task) });
const plain = tasks.map(({ name, type, commands, dependencies }) => ({ name, type, commands, dependencies }));
console.log(JSON.stringify({ label: context.JOB_TYPE.label, tasks: plain }, null, 1));
