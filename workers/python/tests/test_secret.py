import os
import stat
import tempfile
import unittest
from unittest import mock

from flink_bridge import secret


class ControlSecretTest(unittest.TestCase):

    def setUp(self):
        self.dir = os.path.join(tempfile.mkdtemp(), "rings")

    def test_the_first_side_creates_the_file_with_mode_0600_and_the_next_reads_it(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            first = secret.for_directory(self.dir)
            again = secret.for_directory(self.dir)
        self.assertEqual(first, again)
        self.assertEqual(64, len(first))
        path = os.path.join(self.dir, secret.FILE_NAME)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        self.assertEqual(0o700, stat.S_IMODE(os.stat(self.dir).st_mode))

    def test_a_file_others_may_read_is_refused(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            secret.for_directory(self.dir)
            os.chmod(os.path.join(self.dir, secret.FILE_NAME), 0o644)
            with self.assertRaises(OSError) as refused:
                secret.for_directory(self.dir)
        self.assertIn("has mode rw-r--r--; it must be rw-------", str(refused.exception))

    def test_a_symbolic_link_is_refused(self):
        os.makedirs(self.dir, mode=0o700)
        target = os.path.join(self.dir, "elsewhere")
        with open(target, "w") as file:
            file.write("0123456789abcdef0123")
        os.chmod(target, 0o600)
        os.symlink(target, os.path.join(self.dir, secret.FILE_NAME))
        with mock.patch.dict(os.environ, {}, clear=True), self.assertRaises(OSError) as refused:
            secret.for_directory(self.dir)
        self.assertIn("is not a regular file", str(refused.exception))

    def test_the_environment_overrides_the_file_and_a_short_secret_is_refused(self):
        with mock.patch.dict(os.environ, {secret.ENV: "from-the-environment-0123"}):
            self.assertEqual("from-the-environment-0123", secret.for_directory(self.dir))
        with mock.patch.dict(os.environ, {secret.ENV: "short"}), self.assertRaises(OSError):
            secret.for_directory(self.dir)


if __name__ == "__main__":
    unittest.main()
