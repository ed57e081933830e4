"""The import_checklist and export_checklist management commands."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from checklist.models import Item, Release
from signoffs.exports import release_snapshot
from signoffs.markdown_export import release_export_markdown
from tests.conftest import SEED_PATH

SECOND_PATH = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"


def _import(*args: str) -> str:
    out = StringIO()
    call_command("import_checklist", *args, stdout=out)
    return out.getvalue()


def _export(*args: str) -> str:
    out = StringIO()
    call_command("export_checklist", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_import_checklist_imports_the_seed_when_given_its_path():
    out = _import(str(SEED_PATH))
    assert out.startswith(f"Imported Release 2 (v0.3.0) from {SEED_PATH}: ")
    assert "434 items, 5 risks, 5 action items, 8 sign-off requirements, 30 criteria" in out
    release = Release.objects.get()
    assert release.history.get().history_change_reason == f"Imported from {SEED_PATH}"


@pytest.mark.django_db
def test_import_checklist_records_the_user_when_given_one(django_user_model):
    pm = django_user_model.objects.create(username="pm")
    _import(str(SECOND_PATH), "--user", "pm")
    assert set(Item.history.values_list("history_user", flat=True)) == {pm.pk}
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        _import(str(SECOND_PATH), "--replace", "--user", "ghost")


@pytest.mark.django_db
def test_import_checklist_fails_with_path_and_line_when_the_version_exists():
    _import(str(SECOND_PATH))
    with pytest.raises(CommandError) as caught:
        _import(str(SECOND_PATH))
    assert str(caught.value) == (
        f"{SECOND_PATH}:4: release v2.0.0-rc.1 already exists; import with --replace to replace "
        "its checklist"
    )
    out = _import(str(SECOND_PATH), "--replace")
    assert out.startswith("Replaced Billing Launch (v2.0.0-rc.1)")
    assert Release.objects.count() == 1


@pytest.mark.django_db
def test_import_checklist_exits_non_zero_with_path_line_message_when_input_is_bad(
    tmp_path, capsys, monkeypatch
):
    from django.db import connections

    # run_from_argv closes every connection when it ends; the test's own must survive.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    bad = tmp_path / "bad.md"
    bad.write_text("**Project:** P\n**Release:** R (v1.0)\n\n## Section 1: S\n\n- [ ] **K-1: A**\n"
                   "- [ ] **K-1: B**\n")  # fmt: skip
    command = load_command_class("checklist", "import_checklist")
    with pytest.raises(SystemExit) as exit_info:
        command.run_from_argv(["manage.py", "import_checklist", str(bad)])
    assert exit_info.value.code != 0
    assert f"{bad}:7: task K-1 appears twice (first at line 6)" in capsys.readouterr().err
    assert Release.objects.count() == 0


@pytest.mark.django_db
def test_import_checklist_refuses_before_reading_when_the_file_is_too_big(tmp_path, settings):
    settings.CHECKLIST_IMPORT_MAX_BYTES = 1000
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(CommandError) as caught:
        _import(str(big))
    assert str(caught.value) == (
        f"{big}: the file is 1,001 bytes; the limit is 1,000 bytes (CHECKLIST_IMPORT_MAX_BYTES)"
    )


@pytest.mark.django_db
def test_import_checklist_names_the_file_when_it_cannot_be_read(tmp_path):
    missing = tmp_path / "missing.md"
    with pytest.raises(CommandError, match=f"^{missing}: cannot read the file: "):
        _import(str(missing))


@pytest.mark.django_db
def test_export_checklist_prints_the_snapshot_when_asked_for_json():
    _import(str(SEED_PATH))
    out = _export("v0.3.0", "--format", "json")
    data = json.loads(out)
    expected = json.loads(json.dumps(release_snapshot(Release.objects.get())))
    assert data == expected
    assert out.startswith('{\n  "action_items": [')  # sorted keys, indented
    assert "create → assign → complete" in out  # UTF-8, not \\u-escaped


@pytest.mark.django_db
def test_export_checklist_writes_markdown_when_asked_for_md_with_an_output_file(tmp_path):
    _import(str(SECOND_PATH))
    target = tmp_path / "out.md"
    assert _export("v2.0.0-rc.1", "--format", "md", "--output", str(target)) == ""
    written = target.read_bytes()
    assert written.decode("utf-8") == release_export_markdown(Release.objects.get())
    assert b"\r\n" not in written
    assert "BILL-7" in _export("v2.0.0-rc.1", "--format", "md")


@pytest.mark.django_db
def test_export_checklist_fails_naming_the_version_when_it_is_unknown():
    with pytest.raises(CommandError, match="^no release with version 'v404'$"):
        _export("v404", "--format", "md")


@pytest.mark.django_db
def test_export_then_import_gives_the_same_json_when_using_the_commands(tmp_path):
    _import(str(SEED_PATH))
    before = _export("v0.3.0", "--format", "json")
    exported = tmp_path / "seed_export.md"
    _export("v0.3.0", "--format", "md", "--output", str(exported))
    _import(str(exported), "--replace")
    assert _export("v0.3.0", "--format", "json") == before
