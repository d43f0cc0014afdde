"""The block of .env that `stack up` owns: rewritten whole, everything else left as it was."""

from __future__ import annotations

from devstack import envfile


def test_the_block_is_written_replaced_and_removed_leaving_other_lines(tmp_path):
    path = tmp_path / ".env"
    path.write_text("PAYSTREAM_API_KEYS=psk_1\n# a note\n")
    envfile.write_managed(path, {"COUCHBASE_CONNSTR": "couchbase://127.0.0.1:12000"})
    assert envfile.managed(path) == {"COUCHBASE_CONNSTR": "couchbase://127.0.0.1:12000"}
    assert envfile.unmanaged(path) == {"PAYSTREAM_API_KEYS": "psk_1"}

    envfile.write_managed(path, {"COUCHBASE_CONNSTR": "couchbase://other", "PAYSTREAM_COUCHBASE_MGMT_URL": "http://x"})
    assert envfile.managed(path) == {"COUCHBASE_CONNSTR": "couchbase://other", "PAYSTREAM_COUCHBASE_MGMT_URL": "http://x"}
    assert path.read_text().count(envfile.BEGIN) == 1

    with path.open("a") as f:  # `paystream apikey` appends after the block
        f.write("PAYSTREAM_LOG_LEVEL=DEBUG\n")
    envfile.write_managed(path, {})
    assert envfile.managed(path) == {}
    assert envfile.unmanaged(path) == {"PAYSTREAM_API_KEYS": "psk_1", "PAYSTREAM_LOG_LEVEL": "DEBUG"}
    assert envfile.BEGIN not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_missing_file_is_created(tmp_path):
    path = tmp_path / "new" / "stack.env"
    envfile.write_managed(path, {"A": "1"})
    assert envfile.managed(path) == {"A": "1"} and envfile.unmanaged(path) == {}
