#!/usr/bin/env python3
"""Generates the package benchmark tree: FILES files, about TOTAL_MB megabytes, mixed sizes and
compressibility, deterministic for a given seed.

Mix by file count: 40% prose-like text, 35% code-like text, 15% random binary (incompressible),
10% structured binary (partly compressible). Sizes are log-normal (median ~4 KiB, a tail of
multi-megabyte files), scaled so the total is TOTAL_MB. Files sit in ~600 folders up to four
levels deep, plus a few empty folders.

usage: gen_tree.py DIR [--files 20000] [--total-mb 200] [--seed 1]
"""
import argparse
import os
import random

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no what "
    "request response server client application package install folder python module import "
    "return value string number list dict error handler config deploy version release build"
).split()

KEYWORDS = ["def", "class", "return", "import", "from", "if", "else", "for", "while", "with",
            "try", "except", "yield", "lambda", "self", "None", "True", "False"]


def prose(rng, n):
    out = []
    size = 0
    while size < n:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 18))).capitalize()
        line = sentence + ". "
        if rng.random() < 0.15:
            line += "\n\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def ident(rng):
    return "_".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + str(rng.randint(0, 99))


def code(rng, n):
    out = []
    size = 0
    depth = 0
    while size < n:
        r = rng.random()
        if r < 0.1:
            line = f"def {ident(rng)}({ident(rng)}, {ident(rng)}=None):"
            depth = 1
        elif r < 0.15:
            line = f"class {ident(rng).title().replace('_', '')}(object):"
            depth = 1
        else:
            kw = rng.choice(KEYWORDS)
            line = f"{kw} {ident(rng)} = {ident(rng)}.{ident(rng)}({rng.randint(0, 9999)}, '{ident(rng)}')"
        line = "    " * depth + line + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def random_binary(rng, n):
    return rng.randbytes(n)


def structured_binary(rng, n):
    # Records with a fixed layout, small counters and random payload: deflates to ~50-60%.
    out = bytearray()
    i = 0
    while len(out) < n:
        out += b"REC\x00" + i.to_bytes(4, "little") + bytes(8) + rng.randbytes(16)
        i += 1
    return bytes(out[:n])


KINDS = [(0.40, prose, ".txt"), (0.35, code, ".py"), (0.15, random_binary, ".bin"),
         (0.10, structured_binary, ".dat")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--total-mb", type=float, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    raw = [min(rng.lognormvariate(8.3, 1.3), 16e6) for _ in range(args.files)]
    scale = args.total_mb * 1e6 / sum(raw)
    sizes = [max(0, int(s * scale)) for s in raw]

    folders = [""]
    for _ in range(600):
        parent = rng.choice(folders)
        if parent.count("/") >= 3:
            parent = ""
        folders.append(f"{parent}{ident(rng)}/")
    for i, f in enumerate(folders):
        os.makedirs(os.path.join(args.dir, f), exist_ok=True)
    for i in range(5):
        os.makedirs(os.path.join(args.dir, f"empty{i}", "App_Data"), exist_ok=True)

    total = 0
    for i, size in enumerate(sizes):
        r = rng.random()
        acc = 0
        for share, make, ext in KINDS:
            acc += share
            if r < acc:
                break
        path = os.path.join(args.dir, rng.choice(folders), f"f{i:05d}{ext}")
        data = make(rng, size)
        with open(path, "wb") as fh:
            fh.write(data)
        total += len(data)
    print(f"generated {len(sizes)} files, {total / 1e6:.1f} MB, {len(folders) + 10} folders in {args.dir}")


if __name__ == "__main__":
    main()
