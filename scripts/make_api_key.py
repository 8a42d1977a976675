"""Make an API key: prints the key once (give it to the client) and the hashed entry for the keys file.

python scripts/make_api_key.py NAME --directories office lobby --access read
python scripts/make_api_key.py admin --directories '*' --access write >> keys.json  # then fix the JSON list
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.auth import dump_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--directories", nargs="+", required=True, help="directories the key may use; '*' for all")
    parser.add_argument("--access", choices=["read", "write"], default="read")
    args = parser.parse_args()
    key = secrets.token_urlsafe(32)
    print(f"key (shown once, store it with the client): {key}", file=sys.stderr)
    print(dump_key(args.name, key, args.directories, args.access))


if __name__ == "__main__":
    main()
