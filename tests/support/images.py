"""The tests' container image: busybox from Debian's busybox-static, made with `docker import`.

No registry is reachable, so nothing is pulled; `busybox httpd -f -p 80` serves HTTP.
"""

from __future__ import annotations

import io
import tarfile

import docker

IMAGE = "eyes-devine-test/busybox:1"
APPLETS = ("sh", "httpd", "wget", "sleep", "cat", "echo", "ls", "ip", "nc", "ifconfig")


def busybox_tar(busybox_path: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "www", "tmp", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add(busybox_path, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        page = b"hello from eyes-devine tests\n"
        info = tarfile.TarInfo("www/index.html")
        info.size = len(page)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def ensure_image(client: docker.DockerClient, busybox_path: str) -> str:
    try:
        client.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    repository, tag = IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(
        busybox_tar(busybox_path),
        repository=repository,
        tag=tag,
        changes=['CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', "EXPOSE 80"],
    )
    return IMAGE
