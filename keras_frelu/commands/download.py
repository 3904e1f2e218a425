"""Download the built-in datasets and convert them into DATA_DIR/NAME (layout: datasets/README.md).

    %(prog)s --dataset MNIST SVHN CIFAR10
    %(prog)s --dataset digits                  # bundled with scikit-learn: no network needed

Files come from their official sources (with fallback mirrors), stream with a progress bar, resume after a
dropped connection, and are checked against their published MD5 before conversion. A dataset folder
appears only when it is complete; an existing one is left as it is (delete it to convert again).
Exit codes: 0 done, 1 download or archive problem (bad checksum, corrupt file, network), 2 bad flags.
"""

import urllib.parse

from keras_frelu import cli
from keras_frelu.data import sources


def dataset_name(text):
    name = sources.canonical_name(text)
    if name is None:
        raise cli.argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose from {', '.join(sources.BUILTIN)}")
    return name


def mirror_url(text):
    if urllib.parse.urlparse(text).scheme not in ("http", "https", "ftp", "file"):
        raise cli.argparse.ArgumentTypeError(f"{text!r} is not a URL; give e.g. https://host/path or file:///folder")
    return text


def build_parser(prog=None):
    names = "\n".join(f"  {name:<13} {source.about}" for name, source in sources.SOURCES.items())
    parser = cli.ArgumentParser(prog=prog, description=__doc__, epilog=f"datasets (any letter case):\n{names}",
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--dataset", "--datasets", dest="datasets", nargs="+", type=dataset_name, required=True, metavar="NAME",
        help=f"one or more of {', '.join(sources.BUILTIN)}")
    add("--data_dir", type=cli.folder, default="datasets",
        help="folder that receives DATA_DIR/NAME (default: %(default)s)")
    add("--mirror", metavar="BASE_URL", type=mirror_url,
        help="fetch every file as BASE_URL/<original file name> (e.g. BASE_URL/train-images-idx3-ubyte.gz, "
             "BASE_URL/cifar-10-python.tar.gz, BASE_URL/train_32x32.mat) instead of from the official sources; "
             "the published checksums still apply unless --no_checksum")
    add("--no_checksum", action="store_true",
        help="do not check the published MD5 of each file (for a mirror serving files of its own)")
    add("--keep_archives", action="store_true",
        help="keep the downloaded files in DATA_DIR/downloads/NAME after conversion (reused by later runs)")
    return parser


def main(argv=None, prog=None):
    """``prog`` None: the script's file name (download.py)."""
    args = build_parser(prog).parse_args(argv)
    for name in dict.fromkeys(args.datasets):  # each once, in the order given
        sources.prepare(name, args.data_dir, mirror=args.mirror, verify=not args.no_checksum,
                        keep_archives=args.keep_archives)
