"""Read model archives from and write artifacts to plain paths, file://, s3:// (and https://) URIs.

s3:// goes through boto3, which honours the standard settings (AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL, profiles, credentials), so any S3-compatible store works. Failures become
Neo-style FailureReasons: ``ClientError: InputConfiguration: ...`` when reading,
``ClientError: OutputConfiguration: ...`` when writing.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from neo_local.api.errors import JobFailure, client_error

_CHUNK = 1 << 20
HTTP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Location:
    """A parsed S3Uri / S3OutputLocation."""

    scheme: str                 # "file" (plain paths too), "s3", "https", "http"
    path: str = ""              # file: the local path (absolute or relative as given)
    bucket: str = ""            # s3
    key: str = ""               # s3 (no leading slash)

    @classmethod
    def parse(cls, uri: str) -> "Location":
        if "://" not in uri and not uri.startswith("file:"):
            return cls("file", path=os.path.expanduser(uri))
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme == "file":
            # file:///abs, file://localhost/abs; file://rel/path and file:rel are relative,
            # as the AWS CLI's file:// prefix for parameter files is.
            if parsed.netloc in ("", "localhost"):
                path = unquote(parsed.path)
            else:
                path = unquote(parsed.netloc + parsed.path)
            return cls("file", path=os.path.expanduser(path))
        if scheme == "s3":
            return cls("s3", bucket=parsed.netloc, key=unquote(parsed.path.lstrip("/")))
        if scheme in ("https", "http"):
            return cls(scheme, path=uri)
        return cls(scheme, path=uri)


def absolute_location(uri: str, base: Path | None = None) -> str:
    """``uri`` with a local path made absolute against ``base`` (default: the current directory).

    Plain paths stay plain paths, file: URIs become ``file:///abs/path``; others are unchanged.
    The API service calls this at create time so that the job's worker, which runs in another
    directory, reads and writes where the caller meant.
    """
    loc = Location.parse(uri)
    if loc.scheme != "file":
        return uri
    path = Path(base or Path.cwd()) / loc.path
    absolute = os.path.normpath(path)
    if "://" not in uri and not uri.startswith("file:"):
        return absolute
    return "file://" + absolute


# -- download ------------------------------------------------------------------------------


def download(uri: str, dest_dir: Path) -> Path:
    """Copy the object at ``uri`` into ``dest_dir``; return the local file.
    Raises JobFailure (ClientError: InputConfiguration: ...) when it cannot be read."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    loc = Location.parse(uri)
    if loc.scheme == "file":
        return _download_file(uri, Path(loc.path), dest_dir)
    if loc.scheme == "s3":
        return _download_s3(uri, loc, dest_dir)
    if loc.scheme in ("https", "http"):
        return _download_http(uri, dest_dir)
    raise _input_error(
        f"S3Uri {uri} has an unsupported scheme '{loc.scheme}://'; use an s3:// URI, "
        "a file:// URI, a local path or an https:// URL."
    )


def _input_error(message: str) -> JobFailure:
    return client_error("InputConfiguration", message)


def _download_file(uri: str, src: Path, dest_dir: Path) -> Path:
    src = src.absolute()
    try:
        if not src.exists():
            raise _input_error(f"The model archive {uri} does not exist (no such file: {src}).")
        if src.is_dir():
            raise _input_error(
                f"S3Uri {uri} is a directory; it must name the model archive file "
                "(a .tar.gz holding the model)."
            )
        if not src.is_file():
            raise _input_error(f"S3Uri {uri} is not a regular file ({src}).")
        dest = dest_dir / src.name
        shutil.copyfile(src, dest)
        return dest
    except PermissionError as e:
        raise _input_error(f"Cannot read the model archive {uri}: permission denied ({e.filename or src}).") from e
    except OSError as e:
        raise _input_error(f"Cannot read the model archive {uri}: {e.strerror or e}.") from e


def _s3_client():
    import boto3

    return boto3.session.Session().client("s3")


def _s3_problem(e: Exception) -> tuple[str, str]:
    """(error code, message) of a botocore exception."""
    from botocore.exceptions import ClientError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        return code, str(err.get("Message") or code)
    return type(e).__name__, str(e)


def _s3_transport_message(uri: str, e: Exception) -> str | None:
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return (f"No usable AWS credentials to access {uri}: {e}. Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE.")
    if isinstance(e, EndpointConnectionError):
        return (f"Cannot connect to the S3 endpoint for {uri}: {e}. Check AWS_ENDPOINT_URL_S3 / "
                "AWS_ENDPOINT_URL and the network.")
    return None


def _download_s3(uri: str, loc: Location, dest_dir: Path) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    if not loc.bucket:
        raise _input_error(f"S3Uri {uri} names no bucket; use s3://<bucket>/<key>.")
    if not loc.key or loc.key.endswith("/"):
        raise _input_error(
            f"S3Uri {uri} names a bucket or prefix, not an object; it must name the model "
            "archive (a .tar.gz holding the model), e.g. s3://bucket/path/model.tar.gz."
        )
    where = f"Bucket: {loc.bucket}, Key: {loc.key}"
    dest = dest_dir / (PurePosixPath(loc.key).name or "model.tar.gz")
    try:
        body = _s3_client().get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
        with open(dest, "wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        return dest
    except (ClientError, BotoCoreError) as e:
        transport = _s3_transport_message(uri, e)
        if transport:
            raise _input_error(transport) from e
        code, message = _s3_problem(e)
        if code == "NoSuchBucket":
            raise _input_error(f"S3 bucket does not exist. {where}") from e
        if code in ("NoSuchKey", "404", "NotFound"):
            raise _input_error(f"S3 object does not exist. {where}") from e
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            raise _input_error(
                f"Access denied reading the S3 object. {where}. The credentials in use need "
                "s3:GetObject on it."
            ) from e
        raise _input_error(f"Cannot read the S3 object ({code}: {message}). {where}") from e
    except OSError as e:
        raise _input_error(f"Cannot save {uri} into the job's scratch directory: {e}") from e


def _download_http(uri: str, dest_dir: Path) -> Path:
    name = PurePosixPath(urlparse(uri).path).name or "model.tar.gz"
    dest = dest_dir / name
    try:
        with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_S) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
        return dest
    except urllib.error.HTTPError as e:
        raise _input_error(f"Cannot download the model archive {uri}: HTTP {e.code} {e.reason}.") from e
    except urllib.error.URLError as e:
        raise _input_error(f"Cannot download the model archive {uri}: {e.reason}.") from e
    except OSError as e:
        raise _input_error(f"Cannot download the model archive {uri}: {e}.") from e


# -- upload --------------------------------------------------------------------------------


def upload(local_file: Path, location: str, kms_key_id: str | None = None) -> str:
    """Put ``local_file`` under ``location`` (a prefix) keeping its file name; return its URI.

    ``kms_key_id`` (OutputConfig.KmsKeyId) is applied as SSE-KMS to s3:// uploads; it has no
    meaning for local paths and is ignored there.
    Raises JobFailure (ClientError: OutputConfiguration: ...) when it cannot be written."""
    local_file = Path(local_file)
    loc = Location.parse(location)
    if loc.scheme == "file":
        return _upload_file(local_file, location, Path(loc.path))
    if loc.scheme == "s3":
        return _upload_s3(local_file, location, loc, kms_key_id)
    raise _output_error(
        f"S3OutputLocation {location} has an unsupported scheme '{loc.scheme}://'; use an s3:// "
        "URI, a file:// URI or a local directory."
    )


def _output_error(message: str) -> JobFailure:
    return client_error("OutputConfiguration", message)


def _upload_file(local_file: Path, location: str, dest_dir: Path) -> str:
    dest_dir = dest_dir.absolute()
    try:
        if dest_dir.exists() and not dest_dir.is_dir():
            raise _output_error(
                f"S3OutputLocation {location} is an existing file; it must be a directory "
                f"(the artifact is written into it as {local_file.name})."
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / local_file.name
        tmp = dest.with_name(f".{dest.name}.partial")
        shutil.copyfile(local_file, tmp)
        os.replace(tmp, dest)
    except PermissionError as e:
        raise _output_error(
            f"Cannot write the artifact to {location}: permission denied ({e.filename or dest_dir})."
        ) from e
    except OSError as e:
        raise _output_error(f"Cannot write the artifact to {location}: {e.strerror or e}.") from e
    if "://" in location or location.startswith("file:"):
        return "file://" + str(dest)
    return str(dest)


def _upload_s3(local_file: Path, location: str, loc: Location, kms_key_id: str | None) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    if not loc.bucket:
        raise _output_error(f"S3OutputLocation {location} names no bucket; use s3://<bucket>/<prefix>.")
    prefix = loc.key.rstrip("/")
    key = f"{prefix}/{local_file.name}" if prefix else local_file.name
    extra = {}
    if kms_key_id:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    where = f"Bucket: {loc.bucket}, Key: {key}"
    try:
        with open(local_file, "rb") as body:
            _s3_client().put_object(Bucket=loc.bucket, Key=key, Body=body, **extra)
    except (ClientError, BotoCoreError) as e:
        transport = _s3_transport_message(location, e)
        if transport:
            raise _output_error(transport) from e
        code, message = _s3_problem(e)
        if code == "NoSuchBucket":
            raise _output_error(
                f"S3 bucket does not exist. Bucket: {loc.bucket} (S3OutputLocation {location})"
            ) from e
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            raise _output_error(
                f"Access denied writing the artifact to S3. {where}. The credentials in use need "
                "s3:PutObject there" + (" and kms:GenerateDataKey on the KmsKeyId." if kms_key_id else ".")
            ) from e
        if code.startswith("KMS") or "kms" in message.lower():
            raise _output_error(f"Cannot encrypt the artifact with KmsKeyId {kms_key_id}: {message}. {where}") from e
        raise _output_error(f"Cannot write the artifact to S3 ({code}: {message}). {where}") from e
    except OSError as e:
        raise _output_error(f"Cannot read the artifact {local_file} to upload it: {e}") from e
    return f"s3://{loc.bucket}/{key}"
