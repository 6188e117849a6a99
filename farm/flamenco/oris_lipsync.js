// SPDX-License-Identifier: MIT
// Oris lip sync as a Flamenco job type: a manifest of dialogue lines, one Blender task per chunk of rows.
//
// Install: copy this file into the Flamenco Manager's `scripts/` folder and restart the Manager; the job type
// "Oris Lip Sync" then appears in the Blender add-on's job types. Each task runs
//     blender -b -y -c oris lipsync --batch MANIFEST -o OUTPUT --chunk K/N --run-id RUN
//         --summary OUTPUT/summaries/RUN/chunk-K-of-N.json
// on a worker with the Oris extension installed, with one warm worker process for its rows; rows an earlier
// run finished are skipped, so requeueing a job redoes only the missing rows. RUN is the job's id (a fresh one
// where the Manager gives none): each submission's summaries go to a folder of their own, so a stale summary of
// an earlier submission (another chunk size, say) is never merged. A last task merges this run's summaries into
// OUTPUT/summary.json and fails when a row failed (the list names it).
//
// Tested in the repository by tests/flamenco/compile_job.mjs, which loads this file in node with a recorder
// of Flamenco's documented `author` API and checks the tasks and commands compileJob creates: that checks the
// job compiler, not a running Flamenco Manager (none is installable here).

const JOB_TYPE = {
    label: "Oris Lip Sync",
    description: "Lip sync every row of an Oris manifest into .blend files",
    settings: [
        { key: "manifest", type: "string", subtype: "file_path", required: true,
          description: "CSV or JSON manifest: blend, object, audio[, start_frame, output, text, text_file, existing_animation]" },
        { key: "output", type: "string", subtype: "dir_path", required: true,
          description: "Folder for the .blend files of rows without an output column, and the summaries" },
        { key: "row_count", type: "int32", required: true, propargs: { min: 1 },
          description: "How many rows the manifest has (python -m oris rows MANIFEST prints it)" },
        { key: "chunk_size", type: "int32", default: 50, propargs: { min: 1 },
          description: "Rows per task; each task starts Blender and the inference worker once" },
        { key: "preset", type: "string", default: "auto", description: "Rig preset (auto: detected from the shape keys)" },
        { key: "existing_animation", type: "string", default: "keep", choices: ["keep", "mute", "refuse"],
          description: "An action already on the mouth's shape keys: keep it below Oris's track, mute it, or refuse" },
        { key: "audio_only", type: "bool", default: false,
          description: "Rows without a transcript use the audio alone instead of recognizing the words (faster)" },
        { key: "lead_ms", type: "float", default: 30.0, description: "How far the mouth leads the sound, in ms" },
        { key: "blender_cmd", type: "string", default: "{blender}", visible: "hidden" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const chunks = Math.max(1, Math.ceil(settings.row_count / settings.chunk_size));
    const run = runId(job);
    const summaries = joinPath(joinPath(settings.output, "summaries"), run);
    const options = ["--preset", settings.preset, "--existing-animation", settings.existing_animation,
                     "--lead-ms", String(settings.lead_ms)];
    if (settings.audio_only) {
        options.push("--audio-only");
    }
    const chunkTasks = [];
    for (let k = 1; k <= chunks; k++) {
        const task = author.Task(`lipsync-${k}-of-${chunks}`, "blender");
        task.addCommand(author.Command("blender-render", {
            exe: settings.blender_cmd,
            exeArgs: "{blenderArgs}",
            // `-c` hands every later argument to Oris, so the manifest takes the blend file's place (and gets
            // Flamenco's path translation between platforms)
            argsBefore: ["-c", "oris", "lipsync", "--batch"],
            blendfile: settings.manifest,
            args: ["-o", settings.output, "--chunk", `${k}/${chunks}`, "--run-id", run,
                   "--summary", joinPath(summaries, `chunk-${k}-of-${chunks}.json`), "--partial-ok", "-q", ...options],
        }));
        job.addTask(task);
        chunkTasks.push(task);
    }
    const merge = author.Task("summary", "blender");
    merge.addCommand(author.Command("blender-render", {
        exe: settings.blender_cmd,
        exeArgs: "{blenderArgs}",
        argsBefore: ["-c", "oris", "summary"],
        blendfile: summaries,
        args: ["--run-id", run, "-o", joinPath(settings.output, "summary.json"), "--manifest", settings.manifest],
    }));
    for (const task of chunkTasks) {
        merge.addDependency(task);
    }
    job.addTask(merge);
}

// The job's UUID where the Manager has given it one; else a fresh id, sortable by time, as `oris new-run` makes.
function runId(job) {
    if (job.id && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(job.id)) {
        return job.id;
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "");
    return `${stamp}-${Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0")}`;
}

// Flamenco's own `path` module is not there in every Manager version; a forward slash works on every OS.
function joinPath(folder, name) {
    return folder.replace(/[\\/]+$/, "") + "/" + name;
}
