"""The `kerassl` command's entry point: arguments are parsed before any backend starts.

`import kerassl` imports Keras and with it TensorFlow (seconds, and C++
start-up lines on stderr); `kerassl --help` and `kerassl --version` need
neither, so the parser lives here, outside the `kerassl` package, and the
commands (`kerassl.cli`) are imported only to run one, with TensorFlow's C++
logs turned down to errors unless `TF_CPP_MIN_LOG_LEVEL` is set.
"""

import os

from kerassl_cli.parser import METHODS, MethodSpec, build_parser, package_version

__all__ = ["METHODS", "MethodSpec", "build_parser", "main", "package_version"]


def quiet_backend_logs():
    """TensorFlow's C++ INFO and WARNING lines off (set before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(package_version())
        return 0
    if not args.command:
        parser.print_help()
        return 2
    quiet_backend_logs()
    from kerassl import cli

    return cli.run(args) or 0
