#!/usr/bin/env python3
"""Runs LeadETL stages under Apache Spark (pyspark, local mode): the Makefile's spark-* targets.

    spark-run.py chain  --out DIR --input FILE... STEP...     per-record stages over the lines
    spark-run.py dedupe --out DIR --master FILE --logs DIR --input FILE... -- ARGS...
    spark-run.py keyed  --out DIR --key FIELD --input FILE... STEP

A STEP is `name=stage args...` (one shell-quoted string): the stage's output is saved as
DIR/name, its rejects as DIR/<name without .jsonl>.rejects.jsonl.

Each partition of the input is streamed through the stage's standard input and output, as
RDD.pipe does, through mapPartitionsWithIndex so that each gets its shard (--shard i/n):
its side files (rejects) get their own names and are gathered afterwards in partition order.
The stages get the environment they need (LEAD_STAGES, LEAD_THREADS = cores / partitions),
every exit status is checked (a failed stage fails the job, naming it), and outputs are
written in partition order, atomically, 0600.

- chain: the input's lines split into partitions in order (the files one after the other);
  each step is piped over the partitions of the step before, so every stage file is the one
  a plain run writes.
- dedupe: lead-normalize --dedupe by address_key: shard i of n reads every input and the
  master and keeps the keys that hash to shard i (see Shard.of), so the shards together are
  the single run's master.
- keyed: the lines partitioned by a field's value with the stages' own hash (FNV-1a 64 of
  the UTF-8 bytes, mod n), so a stage that groups by that field (lead-score events by
  listing_id) sees every record of a key in one partition. Lines without the field go to
  the first partition.

The driver binds to 127.0.0.1 and starts no UI. SPARK_PARTITIONS (default 2) and
SPARK_CORES (default 2) set the partitions and local[cores].
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fnv_shard(key, n):
    h = 0xCBF29CE484222325
    for b in key.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % n


def session():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    cores = int(os.environ.get("SPARK_CORES", "2"))
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("leadetl")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark.sparkContext, cores


def stage_env(threads):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LEAD_STAGES": os.path.join(REPO, "stages"),
           "LEAD_THREADS": str(threads), "HOME": os.environ.get("HOME", "/tmp"), "LC_ALL": "C"}
    # LEAD_LOCKS: the stores the driver's caller holds (scripts/locked.sh), which the stages
    # must not wait for.
    for name in ("TMPDIR", "LEAD_MEMORY", "LEAD_LOCKS", "LEAD_NO_WAIT", "LEAD_CRASH_AT"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def piped(rdd, argv, rejects, threads, places=None):
    """The lines of each partition through `argv --shard i/n`; fails the job on a failed stage.
    `places[i]`, when given, is (file, first line) of partition i: the stage names its records
    after that file and line (--input-name, --first-line), as a plain run reading the file."""
    n = rdd.getNumPartitions()
    env = stage_env(threads)

    def run(index, lines):
        command = argv + ["--shard", f"{index + 1}/{n}", "--rejects", rejects]
        if places:
            command += ["--input-name", places[index][0], "--first-line", str(places[index][1])]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        errors = []

        def feed():
            try:
                for line in lines:
                    proc.stdin.write(line.encode("utf-8") + b"\n")
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()

        def drain():
            errors.append(proc.stderr.read().decode("utf-8", "replace"))

        writer = threading.Thread(target=feed)
        reader = threading.Thread(target=drain)
        writer.start()
        reader.start()
        for out in proc.stdout:
            yield out.decode("utf-8").rstrip("\n")
        writer.join()
        reader.join()
        status = proc.wait()
        if status != 0:
            raise RuntimeError(f"{' '.join(command)} exited {status} on partition {index + 1}/{n}: {''.join(errors)[-800:]}")

    return rdd.mapPartitionsWithIndex(run)


def save(rdd, path):
    """The RDD's lines in partition order, written atomically (0600)."""
    part = path + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for line in rdd.toLocalIterator():
            out.write(line + "\n")
    os.replace(part, path)


def gather_rejects(rejects, n):
    """The shards' rejects (<name>.shard-<i>-of-<n>.jsonl) joined in shard order into `rejects`."""
    base, ext = os.path.splitext(rejects)
    parts = [f"{base}.shard-{i}-of-{n}{ext}" for i in range(1, n + 1)]
    present = [p for p in parts if os.path.exists(p)]
    if not present:
        if os.path.exists(rejects):
            os.remove(rejects)
        return 0
    count = 0
    part = rejects + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for p in present:
            with open(p, encoding="utf-8") as f:
                for line in f:
                    out.write(line)
                    count += 1
            os.remove(p)
    os.replace(part, rejects)
    return count


def step_parts(step):
    name, _, command = step.partition("=")
    argv = shlex.split(command)
    return name, argv


def rejects_path(out, name):
    stem = name[:-len(".jsonl")] if name.endswith(".jsonl") else name
    return os.path.join(out, stem + ".rejects.jsonl")


def lines_of(sc, inputs, partitions):
    """The input files' lines, the files one after the other, in `partitions` per file at least,
    and the file each partition belongs to."""
    per_file = max(1, partitions // max(1, len(inputs)))
    rdds, files = [], []
    for f in inputs:
        if os.path.getsize(f) == 0:
            continue
        rdd = sc.textFile(os.path.abspath(f), minPartitions=per_file)
        rdds.append(rdd)
        files += [f] * rdd.getNumPartitions()
    if not rdds:
        return sc.parallelize([], partitions), [None] * partitions
    return (sc.union(rdds) if len(rdds) > 1 else rdds[0]), files


def places_of(rdd, files):
    """(file, first line) of each partition: the line count of the partitions before it in the same file."""
    counts = rdd.mapPartitions(lambda lines: [sum(1 for _ in lines)]).collect()
    places, line, previous = [], 1, None
    for f, count in zip(files, counts):
        if f != previous:
            line, previous = 1, f
        places.append((f or "-", line))
        line += count
    return places


def report(**fields):
    print(json.dumps({"stage": "spark", **fields}), file=sys.stderr)


def chain(args):
    sc, cores = session()
    rdd, files = lines_of(sc, args.input, args.partitions)
    n = rdd.getNumPartitions()
    threads = max(1, cores // n)
    places = places_of(rdd, files)
    for step in args.steps:
        name, argv = step_parts(step)
        rejects = rejects_path(args.out, name)
        rdd = piped(rdd, argv, rejects, threads, places).cache()
        path = os.path.join(args.out, name)
        save(rdd, path)
        report(step=name, partitions=n, rejected=gather_rejects(rejects, n))
        # The next stage reads this one's output, line for line as a plain run would.
        places = places_of(rdd, [os.path.join(args.named_out, name)] * n)


def keyed(args):
    sc, cores = session()
    n = args.partitions
    field = args.key

    def key_of(line):
        try:
            value = json.loads(line).get(field)
        except ValueError:
            value = None
        return ("" if value is None else str(value), line)

    pairs = lines_of(sc, args.input, n)[0].map(key_of)
    rdd = pairs.partitionBy(n, lambda k: 0 if k == "" else fnv_shard(k, n)).values()
    threads = max(1, cores // n)
    run_id = None
    if args.run_id_from:
        with open(args.run_id_from, encoding="utf-8") as f:
            first = f.readline()
        run_id = json.loads(first).get("run_id") if first.strip() else None
    for step in args.steps:
        name, argv = step_parts(step)
        if run_id:
            argv = argv + ["--run-id", run_id]
        rejects = rejects_path(args.out, name)
        rdd = piped(rdd, argv, rejects, threads).cache()
        save(rdd, os.path.join(args.out, name))
        report(step=name, partitions=n, key=field, rejected=gather_rejects(rejects, n))


def dedupe(args):
    sc, cores = session()
    n = args.partitions
    env = stage_env(max(1, cores // n))
    rejects = rejects_path(args.out, args.name)
    command = args.stage + ["--rejects", rejects]

    def run(index, _):
        argv = command + ["--shard", f"{index + 1}/{n}"]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode('utf-8', 'replace')[-800:]}")
        for line in done.stdout.decode("utf-8").splitlines():
            yield line

    rdd = sc.parallelize(range(n), n).mapPartitionsWithIndex(run).cache()
    save(rdd, os.path.join(args.out, args.name))
    report(step=args.name, partitions=n, key="address_key", rejected=gather_rejects(rejects, n))
    rest = rdd
    threads = max(1, cores // n)
    for step in args.steps:
        name, argv = step_parts(step)
        rejected = rejects_path(args.out, name)
        rest = piped(rest, argv, rejected, threads).cache()
        save(rest, os.path.join(args.out, name))
        report(step=name, partitions=n, rejected=gather_rejects(rejected, n))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    partitions = int(os.environ.get("SPARK_PARTITIONS", "2"))
    for mode in ("chain", "keyed", "dedupe"):
        p = sub.add_parser(mode)
        p.add_argument("--out", required=True)
        p.add_argument("--partitions", type=int, default=partitions)
        p.add_argument("--step", dest="steps", action="append", default=[],
                       help="name=stage args (repeatable, in order)")
        if mode != "dedupe":
            p.add_argument("--input", nargs="+", required=True)
        if mode == "keyed":
            p.add_argument("--key", required=True)
            p.add_argument("--run-id-from", help="a file whose first line is an events run record: its run_id goes to every step as --run-id, so no partition depends on seeing it")
        if mode == "dedupe":
            p.add_argument("--name", required=True, help="the dedupe output's name (normalized.jsonl)")
            p.add_argument("stage", nargs=argparse.REMAINDER, help="-- lead-normalize --dedupe ... (without --shard)")
    args = parser.parse_args()
    args.named_out = args.out  # as given: the name a plain run's stage reads its input by
    args.out = os.path.abspath(args.out)
    if args.mode == "dedupe" and args.stage and args.stage[0] == "--":
        args.stage = args.stage[1:]
    {"chain": chain, "keyed": keyed, "dedupe": dedupe}[args.mode](args)


if __name__ == "__main__":
    main()
