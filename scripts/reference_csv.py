"""The reference CSVs under tests/data (metric,image,region,score), written the same way by every
scripts/make_*references.py (they import this module from their own folder)."""
import csv
import pathlib

FIELDS = ['metric', 'image', 'region', 'score']


def write_rows(path: pathlib.Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)
    print(f'wrote {len(rows)} rows to {path}')
