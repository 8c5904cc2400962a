#!/usr/bin/env python3
"""Runs LeadETL stages under Apache Spark (pyspark, local mode): the Makefile's spark-* targets.

    spark-run.py chain  --out DIR --input FILE... STEP...     per-record stages over the lines
    spark-run.py dedupe --out DIR --master FILE --logs DIR --input FILE... -- ARGS...
    spark-run.py keyed  --out DIR --key FIELD --input FILE... STEP
    spark-run.py shards --out DIR --rejects FILE [--then COMMAND] -- ARGS...

A STEP is `name=stage args...` (one shell-quoted string): the stage's output is saved as
DIR/name, its rejects as DIR/<name without .jsonl>.rejects.jsonl.

The first stage of a chain gets each partition of the input on its standard input, as
RDD.pipe does, through mapPartitionsWithIndex so that each gets its shard (--shard i/n) and
the name of the file and line its lines start on (--input-name, --first-line): its side
files (rejects) get their own names, gathered afterwards in partition order, and records and
rejects name the line a plain run would. Each task writes its stage's output to a part file
under DIR/.spark-parts/ (the driver's disk in local mode; on a cluster DIR must be a shared
filesystem) and the next stage of the chain runs over those parts, one task each, so no
stage output goes through the JVM or the driver's memory; the driver joins the parts in
partition order, atomically (0600). The stages get the environment they need (LEAD_STAGES,
LEAD_THREADS = cores / partitions, the store locks the caller holds) and every exit status
is checked: a failed stage fails the job, naming the stage and its shard.

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
- shards: a keyed stage that reads its inputs and its store itself, as n tasks, shard i of n
  each (lead-export permits --shard: each reads the whole input and keeps the trades it
  owns); --then runs in the driver once they all succeeded (lead-export permits
  --join-shards n), then the shards' rejects are gathered into --rejects.

The driver binds to 127.0.0.1 and starts no UI. SPARK_PARTITIONS (default 2) and
SPARK_CORES (default 2) set the partitions and local[cores].
"""
import argparse
import json
import os
import shlex
import shutil
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


def stage_task(argv, env, out_part, rejects, shard, place=None, path=None):
    """A function of a partition's lines that runs `argv` as shard `shard` ("i/n") over them
    (on its standard input, as RDD.pipe does), or over the file `path` when given, with its
    output into `out_part`; it yields the number of lines written. A failed stage fails the
    task, naming the stage, its shard and the end of its stderr."""
    def run(lines):
        command = argv + ["--shard", shard, "--rejects", rejects]
        if place:
            command += ["--input-name", place[0], "--first-line", str(place[1])]
        if path:
            command.append(path)
        fd = os.open(out_part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL if path else subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            errors = []
            threads = [threading.Thread(target=lambda: errors.append(proc.stderr.read().decode("utf-8", "replace")))]
            if not path:
                def feed():
                    try:
                        batch = []
                        for line in lines:
                            batch.append(line)
                            if len(batch) == 4096:
                                proc.stdin.write(("\n".join(batch) + "\n").encode("utf-8"))
                                batch = []
                        if batch:
                            proc.stdin.write(("\n".join(batch) + "\n").encode("utf-8"))
                    except BrokenPipeError:
                        pass
                    finally:
                        proc.stdin.close()
                threads.append(threading.Thread(target=feed))
            for t in threads:
                t.start()
            count = 0
            for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
                out.write(chunk)
                count += chunk.count(b"\n")
            for t in threads:
                t.join()
            status = proc.wait()
        if status != 0:
            raise RuntimeError(f"{' '.join(command)} exited {status} (shard {shard}): {''.join(errors)[-800:]}")
        yield count
    return run


def save(parts, path):
    """The partitions' output files joined in partition order into `path`, atomically (0600)."""
    part = path + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(part, path)


def gather_rejects(rejects, n):
    """The shards' rejects (<name>.shard-<i>-of-<n>.jsonl) joined in shard order into `rejects`
    (removed when no shard rejected anything); the number of rejects."""
    base, ext = os.path.splitext(rejects)
    present = [p for p in (f"{base}.shard-{i}-of-{n}{ext}" for i in range(1, n + 1)) if os.path.exists(p)]
    if not present:
        if os.path.exists(rejects):
            os.remove(rejects)
        return 0
    count = 0
    part = rejects + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for p in present:
            with open(p, "rb") as f:
                data = f.read()
            out.write(data)
            count += data.count(b"\n")
            os.remove(p)
    os.replace(part, rejects)
    return count


def places_after(counts, name):
    """(name, first line) of each part of a file whose parts hold `counts` lines."""
    places, line = [], 1
    for count in counts:
        places.append((name, line))
        line += count
    return places


class Step:
    """One stage of a chain: its output's name, its argv, and where its parts go."""
    def __init__(self, out, step):
        self.name, _, command = step.partition("=")
        self.argv = shlex.split(command)
        self.rejects = rejects_path(out, self.name)
        self.parts_dir = os.path.join(out, ".spark-parts", self.name)
        os.makedirs(self.parts_dir, mode=0o700, exist_ok=True)

    def part(self, i):
        return os.path.join(self.parts_dir, "part-%05d" % i)


def over_lines(sc, rdd, step, env, n, places=None):
    """Runs `step` over each partition of `rdd` (its lines on the stage's stdin); the line counts."""
    def task(index, lines):
        place = places[index] if places else None
        return stage_task(step.argv, env, step.part(index), step.rejects, f"{index + 1}/{n}", place)(lines)
    return rdd.mapPartitionsWithIndex(task).collect()


def over_parts(sc, previous, step, env, n, places):
    """Runs `step` over the parts the step before wrote, one task each (the stage reads its part
    as a file, named after the whole file and line); the line counts."""
    def task(index, _):
        return stage_task(step.argv, env, step.part(index), step.rejects, f"{index + 1}/{n}", places[index] if places else None,
                          path=previous.part(index))(iter(()))
    return sc.parallelize(range(n), n).mapPartitionsWithIndex(task).collect()


def finish(args, step, counts, n, **fields):
    save([step.part(i) for i in range(n)], os.path.join(args.out, step.name))
    report(step=step.name, partitions=n, rejected=gather_rejects(step.rejects, n), **fields)
    return places_after(counts, os.path.join(args.named_out, step.name))


def cleanup(args):
    shutil.rmtree(os.path.join(args.out, ".spark-parts"), ignore_errors=True)


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
    """The steps one after another over the input's lines in order: the first over Spark's
    partitions of the input, each next over the parts the one before wrote."""
    sc, cores = session()
    rdd, files = lines_of(sc, args.input, args.partitions)
    n = rdd.getNumPartitions()
    env = stage_env(max(1, cores // n))
    places = places_of(rdd, files)
    previous = None
    try:
        for text in args.steps:
            step = Step(args.out, text)
            counts = over_lines(sc, rdd, step, env, n, places) if previous is None else over_parts(sc, previous, step, env, n, places)
            places = finish(args, step, counts, n)
            previous = step
    finally:
        cleanup(args)


def keyed(args):
    """The input's lines partitioned by a field with the stages' hash, then the steps."""
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
    env = stage_env(max(1, cores // n))
    run_id = None
    if args.run_id_from:
        with open(args.run_id_from, encoding="utf-8") as f:
            first = f.readline()
        run_id = json.loads(first).get("run_id") if first.strip() else None
    previous = None
    try:
        for text in args.steps:
            step = Step(args.out, text)
            if run_id:
                step.argv += ["--run-id", run_id]
            places = None
            counts = over_lines(sc, rdd, step, env, n) if previous is None else over_parts(sc, previous, step, env, n, places)
            finish(args, step, counts, n, key=field)
            previous = step
    finally:
        cleanup(args)


def dedupe(args):
    """lead-normalize --dedupe as n tasks, shard i of n each over every input and the master,
    then the steps over each shard's part."""
    sc, cores = session()
    n = args.partitions
    env = stage_env(max(1, cores // n))
    first = Step(args.out, args.name + "=" + shlex.join(args.stage))

    def task(index, _):
        return stage_task(first.argv, env, first.part(index), first.rejects, f"{index + 1}/{n}", path=None)(iter(()))

    try:
        # The dedupe reads its files itself: its standard input is empty.
        counts = sc.parallelize(range(n), n).mapPartitionsWithIndex(task).collect()
        places = finish(args, first, counts, n, key="address_key")
        previous = first
        for text in args.steps:
            step = Step(args.out, text)
            counts = over_parts(sc, previous, step, env, n, places)
            places = finish(args, step, counts, n)
            previous = step
    finally:
        cleanup(args)


def shards(args):
    """The stage as n tasks, shard i of n each over the files it names; then --then; then the
    shards' rejects gathered."""
    sc, cores = session()
    n = args.partitions
    env = stage_env(max(1, cores // n))
    parts = os.path.join(args.out, ".spark-parts", "shards")
    os.makedirs(parts, mode=0o700, exist_ok=True)

    def task(index, _):
        return stage_task(args.stage, env, os.path.join(parts, "part-%05d" % index), args.rejects, f"{index + 1}/{n}")(iter(()))

    try:
        sc.parallelize(range(n), n).mapPartitionsWithIndex(task).collect()
        if args.then:
            status = subprocess.run(shlex.split(args.then)).returncode
            if status != 0:
                raise SystemExit(f"spark-run.py: {args.then} exited {status}")
        report(step="shards", partitions=n, rejected=gather_rejects(args.rejects, n))
    finally:
        cleanup(args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    partitions = int(os.environ.get("SPARK_PARTITIONS", "2"))
    for mode in ("chain", "keyed", "dedupe", "shards"):
        p = sub.add_parser(mode)
        p.add_argument("--out", required=True)
        p.add_argument("--partitions", type=int, default=partitions)
        p.add_argument("--step", dest="steps", action="append", default=[],
                       help="name=stage args (repeatable, in order)")
        if mode not in ("dedupe", "shards"):
            p.add_argument("--input", nargs="+", required=True)
        if mode == "keyed":
            p.add_argument("--key", required=True)
            p.add_argument("--run-id-from", help="a file whose first line is an events run record: its run_id goes to every step as --run-id, so no partition depends on seeing it")
        if mode == "dedupe":
            p.add_argument("--name", required=True, help="the dedupe output's name (normalized.jsonl)")
            p.add_argument("stage", nargs=argparse.REMAINDER, help="-- lead-normalize --dedupe ... (without --shard)")
        if mode == "shards":
            p.add_argument("--rejects", required=True, help="where the shards' rejects are gathered")
            p.add_argument("--then", help="a command the driver runs once every shard succeeded (the join)")
            p.add_argument("stage", nargs=argparse.REMAINDER, help="-- the stage ... (without --shard)")
    args = parser.parse_args()
    args.named_out = args.out  # as given: the name a plain run's stage reads its input by
    args.out = os.path.abspath(args.out)
    if args.mode in ("dedupe", "shards") and args.stage and args.stage[0] == "--":
        args.stage = args.stage[1:]
    {"chain": chain, "keyed": keyed, "dedupe": dedupe, "shards": shards}[args.mode](args)


if __name__ == "__main__":
    main()
