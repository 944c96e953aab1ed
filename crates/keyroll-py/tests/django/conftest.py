import pytest

from django_harness import OpenBao


@pytest.fixture
def openbao(tmp_path):
    server = OpenBao(tmp_path)
    yield server
    server.stop()
