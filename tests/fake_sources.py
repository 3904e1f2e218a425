"""Small files in the real formats of the built-in datasets, and a loopback HTTP server that serves them.

Each generator returns the files (name -> bytes) and the arrays a correct conversion must produce
(train/test images NHWC uint8 in true orientation, class indices, class names). Images are random, so a
transposed or channel-swapped conversion cannot match.
"""

import gzip
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import scipy.io


def every_class(rng, count, classes):
    """``count`` training labels in a random order that hold every one of ``classes`` classes (count >= classes),
    as a real training split does: a dataset with a class that has no training example is refused."""
    return rng.permutation(np.arange(count) % classes)


def idx(array):
    """A gzip-compressed IDX file of unsigned bytes (MNIST's format): magic, big-endian sizes, data."""
    header = bytes((0, 0, 0x08, array.ndim)) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def mnist_like(rng, train=12, test=5):
    images = {split: rng.integers(0, 256, (count, 28, 28), dtype=np.uint8) for split, count in
              (("train", train), ("t10k", test))}
    labels = {"train": every_class(rng, train, 10), "t10k": rng.integers(0, 10, test)}
    files = {}
    for split in images:
        files[f"{split}-images-idx3-ubyte.gz"] = idx(images[split])
        files[f"{split}-labels-idx1-ubyte.gz"] = idx(labels[split])
    expected = {"train": (images["train"][..., None], labels["train"]),
                "test": (images["t10k"][..., None], labels["t10k"])}
    return files, expected


def cifar_batch(images, labels, label_key):
    """One CIFAR pickle: rows of 3072 bytes, the red plane then green then blue, each row-major."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return {b"batch_label": b"generated", label_key: [int(label) for label in labels], b"data": rows,
            b"filenames": [f"image_{index}.png".encode() for index in range(len(images))]}


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            data = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar10(rng, per_batch=3, test=4):
    names = [f"class{index}" for index in range(10)]
    train_images = rng.integers(0, 256, (5 * per_batch, 32, 32, 3), dtype=np.uint8)
    train_labels = every_class(rng, len(train_images), 10)
    test_images = rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8)
    test_labels = rng.integers(0, 10, test)
    members = {f"cifar-10-batches-py/data_batch_{index + 1}": cifar_batch(
        train_images[index * per_batch:(index + 1) * per_batch], train_labels[index * per_batch:(index + 1) * per_batch],
        b"labels") for index in range(5)}
    members["cifar-10-batches-py/test_batch"] = cifar_batch(test_images, test_labels, b"labels")
    members["cifar-10-batches-py/batches.meta"] = {b"label_names": [name.encode() for name in names],
                                                   b"num_vis": 3072, b"num_cases_per_batch": per_batch}
    files = {"cifar-10-python.tar.gz": tar_gz(members)}
    return files, {"train": (train_images, train_labels), "test": (test_images, test_labels), "names": names}


def cifar100(rng, train=100, test=4):
    names = [f"fine{index}" for index in range(100)]
    images = {split: rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8) for split, count in
              (("train", train), ("test", test))}
    labels = {"train": every_class(rng, train, 100), "test": rng.integers(0, 100, test)}
    members = {f"cifar-100-python/{split}": {**cifar_batch(images[split], labels[split], b"fine_labels"),
                                             b"coarse_labels": [0] * len(images[split])} for split in images}
    members["cifar-100-python/meta"] = {b"fine_label_names": [name.encode() for name in names],
                                        b"coarse_label_names": [b"coarse"] * 20}
    files = {"cifar-100-python.tar.gz": tar_gz(members)}
    return files, {"train": (images["train"], labels["train"]), "test": (images["test"], labels["test"]),
                   "names": names}


def svhn_mat(images, digits):
    """An SVHN .mat: X [32, 32, 3, N], y [N, 1] with 10 standing for the digit 0."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": images.transpose(1, 2, 3, 0), "y": np.where(digits == 0, 10, digits)[:, None]})
    return buffer.getvalue()


def svhn(rng, sizes=(("train", 10), ("test", 5), ("extra", 6))):
    files, expected = {}, {}
    for split, count in sizes:
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        digits = np.arange(count) % 10  # includes 0, stored as 10
        files[f"{split}_32x32.mat"] = svhn_mat(images, digits)
        expected[split] = (images, digits)
    return files, expected


class FileServer:
    """A threading HTTP server on 127.0.0.1 (a free port) serving ``files`` (URL path -> bytes) with
    Range support. Paths in ``drop_once`` get half their bytes, then the connection closes, once each.
    ``requests`` records (path, Range header) of every GET. Paths in ``no_length`` are sent without a
    Content-Length (the end of the connection ends the body)."""

    def __init__(self, files, drop_once=(), no_length=()):
        self.files = dict(files)
        self.drop_once = set(drop_once)
        self.no_length = set(no_length)
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                requested = self.headers.get("Range")
                owner.requests.append((path, requested))
                body = owner.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(requested.removeprefix("bytes=").split("-")[0]) if requested else 0
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206 if requested else 200)
                if requested:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                if path not in owner.no_length:
                    self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if path in owner.drop_once:
                    owner.drop_once.discard(path)
                    self.wfile.write(payload[:len(payload) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
