"""Pure logic of the Avere client: record codec, API translations, fault mapping, fingerprints."""

from __future__ import annotations

import pytest
from azure.functions._durable_functions import _deserialize_custom_object, _serialize_custom_object

from shared.avere import errors as E
from shared.avere.namespace import (
    create_options,
    junction_advanced,
    junction_from_api,
    short_policy,
)
from shared.avere.records import (
    ActivityStatus,
    CachePolicyRecord,
    ExportPolicyRecord,
    ExportRule,
    FilerRecord,
    JunctionRecord,
    MasterKey,
    RecordError,
    Recovery,
)
from shared.avere.transport import normalize_fingerprint

RULE = ExportRule(
    scope="network",
    filter="10.0.0.0/8",
    permission="rw",
    squash="root_squash",
    anonuid="-2",
    suid=False,
    subdir="",
    auth_sys=True,
    auth_krb=False,
)
JUNCTION = JunctionRecord(
    vserver="vs1",
    path="/data",
    export="/",
    subdir="projects",
    inherit_policy=False,
    policy="lab",
    access="posix",
    sharename="",
    sharesubdir="",
    permissions="modebits",
)
RECORD = FilerRecord(
    name="projects",
    cloud_type="azure",
    bucket="acct/projects",
    server_name="acct.blob.core.windows.net",
    credential_name="cred",
    credential_type="azure-storage",
    crypto_mode="CBC-AES-256-HMAC-SHA-512",
    compress_mode="LZ4",
    ssl_verify_mode="DISABLED",
    https="yes",
    port="443",
    proxy="",
    nearline="no",
    network="cluster",
    cache_policy=CachePolicyRecord(
        name="Full Caching",
        cache_mode="read-write",
        writeback_delay=28800,
        check_attr_period=30,
        check_dir_attr_period=30,
        local_directories=True,
        builtin=True,
    ),
    junctions=(JUNCTION,),
    export_policies=(ExportPolicyRecord(vserver="vs1", name="lab", rules=(RULE,)),),
    active_key_id="k1",
)


def test_filer_record_round_trips_through_the_durable_codec() -> None:
    wire = _serialize_custom_object(RECORD)
    assert wire["__class__"] == "FilerRecord" and wire["__module__"] == "shared.avere.records"
    assert _deserialize_custom_object(wire) == RECORD
    assert FilerRecord.from_json(FilerRecord.to_json(RECORD)) == RECORD
    assert RECORD.encrypted


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"bucket": None}, "FilerRecord.bucket must be str"),
        ({"junctions": "x"}, "must be a list"),
        ({"cache_policy": {"name": "x"}}, "CachePolicyRecord is missing field 'cache_mode'"),
        ({"format": "avere-filer-record/0"}, "format"),
        ({"https": 1}, "must be str"),
    ],
)
def test_bad_records_are_refused_with_the_field_named(change: dict, problem: str) -> None:
    data = {**FilerRecord.to_json(RECORD), **change}
    with pytest.raises(RecordError, match=problem):
        FilerRecord.from_json(data)
    missing = FilerRecord.to_json(RECORD)
    del missing["name"]
    with pytest.raises(RecordError, match="missing field 'name'"):
        FilerRecord.from_json(missing)


def test_secret_holders_hide_their_secrets() -> None:
    key = MasterKey(key_id="k2", signature="sig", recovery_file="U2FsdGVkX1SECRET")
    recovery = Recovery(passphrase="pass-secret", recovery_file="U2FsdGVkX1SECRET")
    assert "SECRET" not in repr(key) and "secret" not in repr(recovery).lower()
    assert key.info.key_id == "k2" and not hasattr(MasterKey, "to_json")
    with pytest.raises(ValueError, match="1 to 49"):
        Recovery(passphrase="x" * 50, recovery_file="f")
    with pytest.raises(ValueError, match="empty"):
        Recovery(passphrase="p", recovery_file=" ")


def test_junction_translations() -> None:
    api = {
        "path": "/data",
        "corefiler": "projects",
        "export": "/",
        "subdir": "projects",
        "inheritPolicy": "no",
        "policy": "vs1.policy.lab",
        "access": "posix",
        "sharename": "",
        "sharesubdir": "",
        "permissions": "modebits",
    }
    assert junction_from_api("vs1", api) == JUNCTION
    assert junction_advanced(JUNCTION) == {
        "subdir": "projects",
        "createSubdirs": "yes",
        "inheritPolicy": "no",
        "access": "posix",
        "sharename": "",
        "sharesubdir": "",
        "policy": "lab",
        "permissions": "modebits",
    }
    inherited = junction_from_api("vs1", {"path": "/x", "mass": "projects", "inheritPolicy": "yes"})
    assert inherited.policy == "" and junction_advanced(inherited)["createSubdirs"] == "no"
    assert short_policy("vs1", "vs2.policy.lab") == "vs2.policy.lab"


def test_create_options_replay_the_record_on_another_bucket() -> None:
    options = create_options(
        RECORD,
        bucket="dr/backup-a",
        server_name="dr.blob.core.windows.net",
        credential="dr-cred",
        bucket_contents="used",
    )
    assert options["bucket"] == "dr/backup-a" and options["cloudCredential"] == "dr-cred"
    assert options["cryptoMode"] == RECORD.crypto_mode and options["cachePolicyName"] == "Full Caching"
    assert options["bucketContents"] == "used"
    for bad in ("nobucket", "a/b/c", "/c"):
        with pytest.raises(ValueError, match="account/container"):
            create_options(RECORD, bucket=bad, server_name="s", credential="c", bucket_contents="used")
    with pytest.raises(ValueError, match="'used' or 'empty'"):
        create_options(RECORD, bucket="a/b", server_name="s", credential="c", bucket_contents="full")


def test_fault_mapping_by_text_first() -> None:
    assert type(E.fault_error("m", 102, "'Cannot find MASS x'")) is E.FilerNotFound
    assert (
        type(E.fault_error("m", 100, "Could not start job corefiler_flush, corefiler_flush already in progress."))
        is E.FlushInProgress
    )
    remain = E.fault_error("m", 105, "You must remove the related junction(s) before ...")
    assert type(remain) is E.JunctionsRemain
    assert type(E.fault_error("m", 999, "odd")) is E.AvereFault
    assert E.is_retryable(E.fault_error("m", 109, "busy"))
    assert not E.is_retryable(E.fault_error("m", 102, "'Cannot find MASS x'"))
    assert not E.is_retryable(E.fault_error("m", 100, "Wrong number of arguments"))
    assert not E.is_retryable(E.fault_error("m", 103, "bad"))


def test_activity_status_and_fingerprints() -> None:
    assert ActivityStatus(id="a", state="failure", percent=10, status="x").done
    assert not ActivityStatus(id="a", state="inprogress", percent=10, status="x").succeeded
    assert normalize_fingerprint("ab" * 32) == ":".join(["AB"] * 32)
    with pytest.raises(E.AvereConfigError):
        normalize_fingerprint("zz" * 32)
