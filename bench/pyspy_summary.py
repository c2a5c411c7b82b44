"""Summarise py-spy raw (collapsed) stacks: top self frames and top inclusive
frames within the project (idp/) and selected libraries.

    python bench/pyspy_summary.py profile.raw [more.raw ...]
"""
import collections
import sys

own, total, n = collections.Counter(), collections.Counter(), 0
for path in sys.argv[1:]:
    for line in open(path):
        stack, count = line.rstrip("\n").rsplit(" ", 1)
        count = int(count)
        n += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
print(f"samples: {n}")
print("-- self time --")
for frame, count in own.most_common(20):
    print(f"{100 * count / n:5.1f}%  {frame[:160]}")
print("-- inclusive time (frames in idp/, authlib, joserfc, sqlalchemy, psycopg, argon2, flask, redis) --")
keys = ("idp/", "authlib/", "joserfc/", "sqlalchemy/", "psycopg/", "argon2/", "flask/", "redis/", "cryptography/", "werkzeug/", "granian", "gunicorn/")
shown = 0
for frame, count in total.most_common():
    if any(k in frame for k in keys) or "(views.py" in frame or "(grants.py" in frame or "(server.py" in frame:
        print(f"{100 * count / n:5.1f}%  {frame[:160]}")
        shown += 1
        if shown >= 60:
            break
