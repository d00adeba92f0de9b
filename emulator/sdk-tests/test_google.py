"""The official Google Python client (google-api-python-client + google-auth) against the
emulator's Google side: a service account's token from the emulator's token_uri, listing a
seeded folder page by page, a download, a Google Doc export, a resumable upload in small
chunks, and Drive's 404.

Environment (set by run.sh):
  EMULATOR_URL             http://127.0.0.1:PORT
  GDRIVE_CREDENTIALS_PATH  a service account key file issued by the emulator (its token_uri
                           is the emulator's /token)
"""

import hashlib
import io
import json
import os
import urllib.request

import pytest
from google.oauth2 import service_account
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload

URL = os.environ["EMULATOR_URL"]
KEY_PATH = os.environ["GDRIVE_CREDENTIALS_PATH"]
SCOPES = ["https://www.googleapis.com/auth/drive"]

INTERVIEW = b"# Interview\n\nThe finance team reconciles invoices by hand.\n"
MEMO = "# Memo\n\nAgents could draft the monthly report.\n"


@pytest.fixture(scope="module")
def drive():
    credentials = service_account.Credentials.from_service_account_file(KEY_PATH, scopes=SCOPES)
    with open(KEY_PATH) as key_file:
        assert json.load(key_file)["token_uri"] == f"{URL}/token"
    # The discovery document bundled with the client, pointed at the emulator. (With only
    # client_options.api_endpoint, the client keeps https for media uploads.)
    document = json.loads(discovery_cache.get_static_doc("drive", "v3"))
    document["rootUrl"] = f"{URL}/"
    document["baseUrl"] = f"{URL}/drive/v3/"
    return build_from_document(document, credentials=credentials)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A local folder seeded into the emulated Drive (naming convention in SEEDING.md)."""
    root = tmp_path_factory.mktemp("client")
    (root / "interview.md").write_bytes(INTERVIEW)
    (root / "Memo.gdoc.md").write_text(MEMO)
    (root / "old.trashed.md").write_text("gone")
    (root / "Deep").mkdir()
    (root / "Deep" / "notes.txt").write_text("nested")
    request = urllib.request.Request(
        f"{URL}/_admin/google/seed",
        data=json.dumps({"dir": str(root)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["folder_id"]


def list_folder(drive, folder_id):
    """Every page of the folder's listing; also returns the number of pages."""
    files, pages = [], 0
    request = drive.files().list(
        q=f"'{folder_id}' in parents and trashed = false",
        pageSize=2,
        fields="nextPageToken, files(id, name, mimeType, md5Checksum, size)",
        supportsAllDrives=True,
        includeItemsFromAllDrives=True,
    )
    while request is not None:
        response = request.execute()
        files.extend(response["files"])
        pages += 1
        request = drive.files().list_next(request, response)
    return files, pages


def test_lists_a_seeded_folder_page_by_page(drive, folder):
    files, pages = list_folder(drive, folder)
    assert pages == 2
    by_name = {f["name"]: f for f in files}
    assert sorted(by_name) == ["Deep", "Memo", "interview.md"]
    assert by_name["Memo"]["mimeType"] == "application/vnd.google-apps.document"
    assert by_name["Deep"]["mimeType"] == "application/vnd.google-apps.folder"
    assert by_name["interview.md"]["size"] == str(len(INTERVIEW))
    assert by_name["interview.md"]["md5Checksum"] == hashlib.md5(INTERVIEW).hexdigest()


def test_downloads_a_file(drive, folder):
    files, _ = list_folder(drive, folder)
    interview = next(f for f in files if f["name"] == "interview.md")
    buffer = io.BytesIO()
    downloader = MediaIoBaseDownload(buffer, drive.files().get_media(fileId=interview["id"]))
    done = False
    while not done:
        _, done = downloader.next_chunk()
    assert buffer.getvalue() == INTERVIEW


def test_exports_a_google_doc(drive, folder):
    files, _ = list_folder(drive, folder)
    memo = next(f for f in files if f["name"] == "Memo")
    markdown = drive.files().export(fileId=memo["id"], mimeType="text/markdown").execute()
    assert markdown.decode() == MEMO
    text = drive.files().export(fileId=memo["id"], mimeType="text/plain").execute()
    assert text.decode() == "Memo\nAgents could draft the monthly report.\n"
    with pytest.raises(HttpError) as refused:
        drive.files().get_media(fileId=memo["id"]).execute()
    assert refused.value.resp.status == 403
    assert refused.value.error_details[0]["reason"] == "fileNotDownloadable"


def test_resumable_upload_in_small_chunks(drive, folder):
    target = (
        drive.files()
        .create(
            body={"name": "Final", "mimeType": "application/vnd.google-apps.folder", "parents": [folder]},
            fields="id, mimeType",
        )
        .execute()
    )
    assert target["mimeType"] == "application/vnd.google-apps.folder"
    content = bytes(n % 251 for n in range(600_000))
    media = MediaIoBaseUpload(
        io.BytesIO(content), mimetype="application/octet-stream", chunksize=256 * 1024, resumable=True
    )
    request = drive.files().create(
        body={"name": "upload.bin", "parents": [target["id"]], "appProperties": {"run_id": "py-1"}},
        media_body=media,
        fields="id, size, md5Checksum, appProperties",
        supportsAllDrives=True,
    )
    chunks, response = 0, None
    while response is None:
        _, response = request.next_chunk()
        chunks += 1
    assert chunks == 3
    assert response["size"] == str(len(content))
    assert response["md5Checksum"] == hashlib.md5(content).hexdigest()
    assert response["appProperties"] == {"run_id": "py-1"}

    found = (
        drive.files()
        .list(
            q=f"'{target['id']}' in parents and appProperties has {{ key='run_id' and value='py-1' }}",
            fields="files(id)",
        )
        .execute()
    )
    assert [f["id"] for f in found["files"]] == [response["id"]]


def test_missing_file_is_drives_404(drive):
    with pytest.raises(HttpError) as missing:
        drive.files().get(fileId="1NoSuchFileAnywhereInThisDriveXYZ").execute()
    assert missing.value.resp.status == 404
    assert missing.value.error_details[0]["reason"] == "notFound"
