"""A Ray worker node in this process (and the processes it starts), joined to the cluster at argv[1] with one
CPU; it runs until killed. tests/cluster starts it in a mount namespace of its own (unshare), where a
folder is covered by an empty tmpfs: a node that does not see the storage the driver writes.

    python tests/cluster/node_process.py GCS_ADDRESS
"""

import os
import sys
import time
import types

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only, as the cluster it joins

from ray.cluster_utils import Cluster  # noqa: E402


def main(address):
    joined = Cluster()
    joined.head_node = types.SimpleNamespace(gcs_address=address)  # elsewhere: add_node starts a worker node
    joined.add_node(num_cpus=1)
    print("node started", flush=True)
    while True:  # killed by the test; the node's processes die with this one (Ray's reaper)
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1])
