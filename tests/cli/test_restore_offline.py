"""`restore` without a network: the snapshot read and checked, the contacts sent in calls of at most N, each contact's
outcome, the report and the exit codes, against a fake of Reply's client."""

from __future__ import annotations

import gzip
import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import DeadlineExceededError, ReplyServerError
from sequence_archiver.core.reply_answers import Problem, ReplyResponse
from sequence_archiver.reply.client import ListAnswer
from sequence_archiver_cli.aws import AwsOptions
from sequence_archiver_cli.common import Console
from sequence_archiver_cli.errors import UsageError
from sequence_archiver_cli.interruption import Interruption
from sequence_archiver_cli.main import main
from sequence_archiver_cli.restoring import ContactOutcome, StopReason, restore_contacts
from sequence_archiver_cli.snapshot_input import SnapshotContact, read_snapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from sequence_archiver.reply.contact_links import ContactLinksAnswer
    from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("no_network")
STATUSES = ("active", "paused", "finished", "inactive", "outOfOffice")


def snapshot_document(count: int = 10, *, sequence_id: int = 101, first: int = 1) -> dict[str, Any]:
    """A snapshot as the function writes it: statuses in turn, each contact with personal data."""
    contacts = [
        {
            "contactId": contact_id,
            "statusInSequence": STATUSES[(contact_id - first) % len(STATUSES)],
            "email": f"person{contact_id}@example.com",
            "firstName": f"First{contact_id}",
            "currentStep": {"stepId": 5, "displayName": "2"},
            "addingDate": "2026-03-08T10:00:00+00:00",
        }
        for contact_id in range(first, first + count)
    ]
    return {
        "schemaVersion": 1,
        "sequenceId": sequence_id,
        "takenAt": "2026-12-07T10:15:00.000000Z",
        "requestIds": ["req-1"],
        "workspace": None,
        "actedAs": None,
        "sequence": {"id": sequence_id, "name": "S"},
        "contactCount": count,
        "contacts": contacts,
        "source": {"endpoint": "GET /v3/sequences/{id}/contacts", "pageSize": 1000},
    }


def write(path: Path, document: object, *, compress: bool = True) -> str:
    data = json.dumps(document).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


class FakeReply:
    """Reply's client as restore uses it: contacts in `known` can be added, once; every attempt is counted."""

    def __init__(self, known: set[int], **kwargs: Any) -> None:
        self.known = known
        self.in_sequence: dict[int, set[int]] = {}
        self.calls: list[tuple[str, int, list[int]]] = []
        self.unarchive_answer: ReplyResponse | Exception = ReplyResponse(200)
        self.add_errors: list[Exception] = []  # raised by the next add calls, after counting an attempt
        self.refuse_add: ListAnswer[Any] | None = None
        self._on_api_call = kwargs.get("on_api_call") or (lambda _call: None)

    def add_contacts_to_sequence(
        self,
        sequence_id: int,
        body: Mapping[str, object],
        deadline: Deadline,
        parse_answer: Callable[[bytes, str], ContactLinksAnswer],
    ) -> ListAnswer[ContactLinksAnswer]:
        ids = list(body["contactIds"])  # type: ignore[call-overload]
        self.calls.append(("add", sequence_id, ids))
        self._on_api_call(object())
        if self.add_errors:
            raise self.add_errors.pop(0)
        if self.refuse_add is not None:
            return self.refuse_add
        there = self.in_sequence.setdefault(sequence_id, set())
        added = [i for i in ids if i in self.known and i not in there]
        not_processed = {
            str(i): {"error": "contactAlreadyInSequence" if i in there else "contactNotFound", "errorDetails": None}
            for i in ids
            if i not in added
        }
        there.update(added)
        return ListAnswer(
            200, page=parse_answer(json.dumps({"added": added, "notProcessed": not_processed}).encode(), "")
        )

    def unarchive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(("unarchive", sequence_id, []))
        self._on_api_call(object())
        if isinstance(self.unarchive_answer, Exception):
            raise self.unarchive_answer
        return self.unarchive_answer

    def release_unused_budget(self, deadline: Deadline) -> None:
        pass


@pytest.fixture
def reply(monkeypatch: pytest.MonkeyPatch, api_key: str) -> FakeReply:
    """The fake stands in for ReplyClient in the command; every contact of the snapshots here is known to it."""
    monkeypatch.setenv("REPLY_API_KEY", api_key)
    fake = FakeReply(known=set(range(1, 1000)))

    def build(**kwargs: Any) -> FakeReply:
        fake._on_api_call = kwargs["on_api_call"]
        return fake

    monkeypatch.setattr("sequence_archiver_cli.commands.restore.ReplyClient", build)
    return fake


def restore(cli: Callable[..., Run], snapshot: str, *args: str) -> Run:
    return cli("restore", "--snapshot", snapshot, "--base-url", "http://127.0.0.1:9", *args)


# ---------------------------------------------------------------- reading the snapshot


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain JSON"])
def test_a_snapshot_is_read_gzip_or_plain_and_each_contact_kept_once(tmp_path: Path, compress: bool) -> None:
    document = snapshot_document(4)
    document["contacts"].append(dict(document["contacts"][0]))

    snapshot = read_snapshot(write(tmp_path / "s.json.gz", document, compress=compress), aws=AwsOptions())

    assert (snapshot.sequence_id, snapshot.duplicates, snapshot.contact_count) == (101, 1, 4)
    assert [(c.contact_id, c.status) for c in snapshot.contacts] == [
        (1, "active"), (2, "paused"), (3, "finished"), (4, "inactive"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schemaVersion=2), "schemaVersion is 2, this command reads 1"),
        (lambda d: d.pop("schemaVersion"), "schemaVersion is missing, this command reads 1"),
        (lambda d: d.update(sequenceId="101"), "sequenceId is not a positive integer"),
        (lambda d: d.update(contacts={}), "contacts is not a list"),
        (lambda d: d["contacts"][2].pop("contactId"), "contacts[2] has no positive integer contactId"),
        (lambda d: d["contacts"][1].update(contactId=True), "contacts[1] has no positive integer contactId"),
        (lambda d: d["contacts"][0].pop("statusInSequence"), "contacts[0] has no statusInSequence"),
        (lambda d: d["contacts"].append("x"), "contacts[5] is not an object"),
    ],
)
def test_a_document_that_is_not_a_snapshot_is_refused_saying_where_never_what_a_contact_holds(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = snapshot_document(5)
    change(document)
    path = write(tmp_path / "s.json.gz", document)

    with pytest.raises(UsageError) as raised:
        read_snapshot(path, aws=AwsOptions())

    assert str(raised.value) == f"the snapshot {path} is not a sequence snapshot: {message}"
    assert "@example.com" not in str(raised.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b not gzip at all", "is not readable gzip data"),
        (b"\xff\xfe\x00", "is neither gzip data nor UTF-8 JSON"),
        (b"{not json", "is not JSON"),
        (gzip.compress(b"[1, 2]", mtime=0), "is not a sequence snapshot: not a JSON object"),
    ],
)
def test_unreadable_data_is_a_usage_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "s.json.gz"
    path.write_bytes(data)

    with pytest.raises(UsageError, match=message):
        read_snapshot(str(path), aws=AwsOptions())


def test_a_missing_file_is_exit_2_and_an_s3_uri_without_a_key_says_how_to_write_one(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    missing = restore(cli, str(tmp_path / "nope.json.gz"), "--to-sequence", "202")
    no_key = restore(cli, "s3://bucket-only", "--to-sequence", "202")

    assert (missing.code, no_key.code) == (2, 2)
    assert "cannot read the snapshot" in missing.err
    assert "is not an S3 object URI: use s3://BUCKET/KEY" in no_key.err
    assert reply.calls == []


# ---------------------------------------------------------------- the calls and each contact's outcome


def contacts(*ids: int) -> list[SnapshotContact]:
    return [SnapshotContact(i, "active", {"contactId": i}) for i in ids]


def run_restore(
    fake: FakeReply, ids: list[SnapshotContact], *, per_call: int, interruption: Interruption | None = None
) -> Any:
    attempts: list[object] = []
    fake._on_api_call = attempts.append
    return restore_contacts(
        fake,
        202,
        ids,
        Deadline(expires_at=float("inf")),
        interruption=interruption or Interruption(),
        attempts_made=lambda: len(attempts),
        per_call=per_call,
    )


def test_contacts_go_in_calls_of_at_most_n_and_each_ends_with_reply_s_word() -> None:
    # Given Reply knows 1..4 and already has 2 in the sequence
    fake = FakeReply(known={1, 2, 3, 4})
    fake.in_sequence[202] = {2}

    # When five contacts are restored two a call
    record = run_restore(fake, contacts(1, 2, 3, 4, 5), per_call=2)

    # Then three calls were made and every contact has its outcome
    assert [ids for _, _, ids in fake.calls] == [[1, 2], [3, 4], [5]]
    assert [(r.contact.contact_id, r.outcome, r.code) for r in record.results] == [
        (1, ContactOutcome.ADDED, None),
        (2, ContactOutcome.ALREADY_IN_SEQUENCE, "contactAlreadyInSequence"),
        (3, ContactOutcome.ADDED, None),
        (4, ContactOutcome.ADDED, None),
        (5, ContactOutcome.REFUSED, "contactNotFound"),
    ]
    assert record.refused_by_reason() == {"contactNotFound": 1}
    assert (record.stop, record.complete) == (None, False)


def test_a_call_reply_refuses_whole_stops_the_run_and_names_what_was_not_tried() -> None:
    fake = FakeReply(known={1, 2, 3})
    fake.refuse_add = ListAnswer(
        404, problem=Problem(code="sequenceContact.sequenceNotFound", detail="Sequence 202 not found.")
    )

    record = run_restore(fake, contacts(1, 2, 3), per_call=2)

    assert len(fake.calls) == 1
    assert [r.outcome for r in record.results] == [
        ContactOutcome.REFUSED, ContactOutcome.REFUSED, ContactOutcome.NOT_ATTEMPTED,
    ]  # fmt: skip
    assert record.stop is StopReason.CALL_REFUSED
    assert record.refused_by_reason() == {"sequenceContact.sequenceNotFound": 2}
    assert record.results[0].reason == (
        "Reply refused the call (404): sequenceContact.sequenceNotFound: Sequence 202 not found."
    )


def test_a_call_without_a_usable_answer_leaves_its_contacts_unconfirmed_and_stops() -> None:
    fake = FakeReply(known={1, 2, 3})
    fake.add_errors = [ReplyServerError("Reply answered 503", http_status=503)]

    record = run_restore(fake, contacts(1, 2, 3), per_call=2)

    assert [r.outcome for r in record.results] == [
        ContactOutcome.UNCONFIRMED, ContactOutcome.UNCONFIRMED, ContactOutcome.NOT_ATTEMPTED,
    ]  # fmt: skip
    assert record.results[0].reason == "Reply answered 503: adding it again is safe"
    assert (record.stop, record.calls[0].http_status) == (StopReason.UNREACHABLE, 503)


def test_a_call_the_deadline_stopped_before_it_was_sent_is_not_attempted() -> None:
    class NoTimeLeft(FakeReply):
        def add_contacts_to_sequence(self, *args: Any, **kwargs: Any) -> Any:
            raise DeadlineExceededError("not enough time left")

    record = run_restore(NoTimeLeft(known={1}), contacts(1, 2), per_call=1)

    assert [r.outcome for r in record.results] == [ContactOutcome.NOT_ATTEMPTED] * 2
    assert (record.stop, record.calls) == (StopReason.TIME_LIMIT, [])


def test_ctrl_c_stops_before_the_next_call() -> None:
    interruption = Interruption()
    fake = FakeReply(known={1, 2})
    original = fake.add_contacts_to_sequence

    def add_then_interrupt(*args: Any) -> Any:
        interruption.request()
        return original(*args)

    fake.add_contacts_to_sequence = add_then_interrupt  # type: ignore[method-assign]

    record = run_restore(fake, contacts(1, 2), per_call=1, interruption=interruption)

    assert [r.outcome for r in record.results] == [ContactOutcome.ADDED, ContactOutcome.NOT_ATTEMPTED]
    assert record.stop is StopReason.INTERRUPTED


# ---------------------------------------------------------------- the command


def test_a_dry_run_says_what_it_would_add_calls_nothing_and_needs_no_key(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLY_API_KEY")
    path = write(tmp_path / "s.json.gz", snapshot_document(250))

    run = restore(cli, path, "--to-sequence", "101", "--dry-run", "--unarchive", "--contacts-per-call", "100")

    assert run.code == 0, run.err
    assert run.lines == [
        f"snapshot {path}: sequence 101, taken 2026-12-07T10:15:00.000000Z, 250 contacts "
        "(active 50, paused 50, outOfOffice 50, finished 50, inactive 50)",
        "selected (active,paused,outOfOffice): 150 contacts for sequence 101, in 2 bulk add calls",
        "would call:",
        "  POST /v3/sequences/101/unarchive",
        "  POST /v3/sequences/101/contact-links/bulk (100 contacts)",
        "  POST /v3/sequences/101/contact-links/bulk (50 contacts)",
    ]
    assert run.err == "dry run: would add 150 contacts to sequence 101 in 3 calls; nothing was sent to Reply\n"
    assert reply.calls == []


def test_a_dry_run_s_json_counts_per_status_and_lists_ids_only_unless_asked(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    path = write(tmp_path / "s.json", snapshot_document(5), compress=False)

    plain = restore(cli, path, "--to-sequence", "202", "--dry-run", "--statuses", "all", "--output", "json")
    shown = restore(cli, path, "--to-sequence", "202", "--dry-run", "--statuses", "PAUSED", "--show-contacts",
                    "--output", "jsonl")  # fmt: skip

    document = json.loads(plain.out)
    assert document["selectedByStatus"] == {"active": 1, "paused": 1, "outOfOffice": 1, "finished": 1, "inactive": 1}
    assert document["calls"] == ["POST /v3/sequences/202/contact-links/bulk (5 contacts)"]
    assert document["contacts"][0] == {"contactId": 1, "statusInSnapshot": "active"}
    assert "@example.com" not in plain.out
    assert [json.loads(line) for line in shown.lines] == [
        {"contactId": 2, "statusInSnapshot": "paused", "email": "person2@example.com", "firstName": "First2",
         "lastName": None, "company": None, "action": "add"},
    ]  # fmt: skip
    assert reply.calls == []


def test_a_run_reports_added_and_refused_per_reason_and_exits_1_when_some_were_refused(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    reply.known = {1, 2, 6}
    reply.in_sequence[202] = {2}
    path = write(tmp_path / "s.json.gz", snapshot_document(7))

    run = restore(cli, path, "--to-sequence", "202", "--statuses", "active,paused", "--output", "json")

    assert run.code == 1, run.err
    document = json.loads(run.out)
    assert document["counts"] == {
        "added": 2, "already_in_sequence": 1, "refused": 1, "unconfirmed": 0, "not_attempted": 0,
    }  # fmt: skip
    assert [(c["contactId"], c["outcome"]) for c in document["contacts"]] == [
        (1, "added"), (2, "already_in_sequence"), (6, "added"), (7, "refused"),
    ]  # fmt: skip
    assert document["refusedByReason"] == {"contactNotFound": 1}
    assert (document["complete"], document["stopped"]) == (False, None)
    assert "@example.com" not in run.out + run.err
    assert reply.calls == [("add", 202, [1, 2, 6, 7])]


def test_a_run_where_every_contact_is_in_the_sequence_exits_0_and_a_second_run_too(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    path = write(tmp_path / "s.json.gz", snapshot_document(5))

    first = restore(cli, path, "--to-sequence", "202")
    again = restore(cli, path, "--to-sequence", "202")

    assert (first.code, again.code) == (0, 0), first.err + again.err
    assert "added 3 of 3 contacts" in first.lines
    assert "already_in_sequence 3 of 3 contacts" in again.lines
    assert "contacts not in the sequence:" not in again.out


def test_more_than_100_contacts_need_yes_where_no_one_is_at_a_terminal(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    path = write(tmp_path / "s.json.gz", snapshot_document(101 * 5 // 3 + 5))  # 101 unfinished or more

    refused = restore(cli, path, "--to-sequence", "202")
    confirmed = restore(cli, path, "--to-sequence", "202", "--yes")

    assert refused.code == 2
    assert "IDs and no terminal to confirm on: re-run with --yes to add them" in refused.err
    assert (confirmed.code, len(reply.calls)) == (0, 1), confirmed.err


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            ReplyResponse(404),
            "Reply answered 404 to POST /v3/sequences/101/unarchive (HTTP 404): Reply's unarchive "
            'endpoint is not available yet ("coming soon" in Reply\'s API reference), or the sequence does not exist;',
        ),
        (
            ReplyResponse(501, problem=Problem(title="Not Implemented")),
            "Reply answered 501 to POST "
            "/v3/sequences/101/unarchive (Not Implemented): Reply's unarchive endpoint is not available yet (",
        ),
        (  # what the client raises after retrying a 501 as it retries every 5xx
            ReplyServerError("Reply answered 501 (Not Implemented)", http_status=501),
            "Reply answered 501 to POST "
            "/v3/sequences/101/unarchive (Not Implemented): Reply's unarchive endpoint is not available yet (",
        ),
    ],
    ids=["404", "501", "501 after retries"],
)
def test_unarchive_that_reply_does_not_offer_yet_stops_with_exit_3_and_adds_nothing(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path, answer: ReplyResponse | Exception, says: str
) -> None:
    reply.unarchive_answer = answer
    path = write(tmp_path / "s.json.gz", snapshot_document(5))

    run = restore(cli, path, "--to-sequence", "101", "--unarchive")

    assert run.code == 3
    assert says in run.err
    assert "nothing was added" in run.err
    assert reply.calls == [("unarchive", 101, [])]


@pytest.mark.parametrize(
    ("answer", "code", "calls"),
    [
        (ReplyResponse(200), 0, ["unarchive", "add"]),
        (ReplyResponse(409, problem=Problem(code="sequenceAction.notArchived")), 0, ["unarchive", "add"]),
        (ReplyResponse(403, problem=Problem(code="sequenceAction.forbidden")), 1, ["unarchive"]),
        (ReplyResponse(409, problem=Problem(code="sequenceAction.somethingElse")), 1, ["unarchive"]),
    ],
    ids=["unarchived", "not archived", "forbidden", "another conflict"],
)
def test_unarchive_goes_first_and_only_an_unarchived_sequence_gets_contacts(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path, answer: ReplyResponse, code: int, calls: list[str]
) -> None:
    reply.unarchive_answer = answer
    path = write(tmp_path / "s.json.gz", snapshot_document(5))

    run = restore(cli, path, "--to-sequence", "101", "--unarchive")

    assert run.code == code, run.err
    assert [call for call, _, _ in reply.calls] == calls


def test_unarchive_is_for_the_snapshot_s_own_sequence_only(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    run = restore(cli, write(tmp_path / "s.json.gz", snapshot_document(5)), "--to-sequence", "202", "--unarchive")

    assert run.code == 2
    assert "--unarchive unarchives the snapshot's own sequence (101), not 202" in run.err
    assert reply.calls == []


def test_a_snapshot_without_the_statuses_asked_for_adds_nothing_and_says_so(
    cli: Callable[..., Run], reply: FakeReply, tmp_path: Path
) -> None:
    document = snapshot_document(5)
    document["contacts"] = [c for c in document["contacts"] if c["statusInSequence"] == "finished"]

    run = restore(cli, write(tmp_path / "s.json.gz", document), "--to-sequence", "202")

    assert run.code == 0
    assert "no contact in the snapshot has the statuses active,paused,outOfOffice: nothing to add" in run.err
    assert reply.calls == []


@pytest.mark.parametrize("statuses", ["", "bogus", "active,nope"])
def test_statuses_must_be_reply_s(cli: Callable[..., Run], reply: FakeReply, tmp_path: Path, statuses: str) -> None:
    run = restore(cli, write(tmp_path / "s.json.gz", snapshot_document(5)), "--to-sequence", "202",
                  "--statuses", statuses)  # fmt: skip

    assert run.code == 2
    assert "argument --statuses: not a status" in run.err


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone (`| head -0`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_stdout_after_the_calls_is_exit_141_saying_what_was_added(
    reply: FakeReply, tmp_path: Path, api_key: str
) -> None:
    path = write(tmp_path / "s.json.gz", snapshot_document(5))
    stderr = io.StringIO()
    console = Console(stdin=io.StringIO(), stdout=ClosedPipe(), stderr=stderr, environ={"REPLY_API_KEY": api_key})

    code = main(["restore", "--snapshot", path, "--to-sequence", "202", "--base-url", "http://127.0.0.1:9",
                 "--output", "jsonl"], console=console)  # fmt: skip

    assert code == 141
    assert stderr.getvalue() == (
        "sequence-archiver restore: stopped: stdout was closed before the report was all written: "
        "added 3 of 3 contacts\n"
    )
    assert len(reply.calls) == 1
