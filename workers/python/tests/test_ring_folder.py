import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

from flink_bridge import secret
from flink_bridge.ring_folder import ensure_private

# The uid of nobody: a user other than the one running the tests (root).
OTHER_UID = 65534
RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RingFolderTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.folder = os.path.join(self.dir, "rings")

    def refusal(self, folder):
        with self.assertRaises(OSError) as refused:
            ensure_private(folder)
        return str(refused.exception)

    def test_a_missing_folder_is_made_private_with_its_parents(self):
        folder = os.path.join(self.dir, "shared", "rings")
        ensure_private(folder)
        ensure_private(folder)
        self.assertEqual(0o700, stat.S_IMODE(os.lstat(folder).st_mode))

    @unittest.skipUnless(os.geteuid() == 0, "giving a folder to another user needs root")
    def test_a_folder_of_another_user_is_refused_naming_its_owner_and_mode(self):
        os.mkdir(self.folder, 0o700)
        os.chown(self.folder, OTHER_UID, -1)
        refusal = self.refusal(self.folder)
        self.assertTrue(refusal.startswith(f"ring folder {self.folder} is a folder owned by uid {OTHER_UID} with mode "
                                           "0700; it must be a folder (not a link) owned by this process's user "
                                           "(uid 0)"), refusal)
        self.assertIn("Remove it, or name another folder", refusal)

    def test_a_folder_others_can_write_is_refused(self):
        os.mkdir(self.folder)
        os.chmod(self.folder, 0o777)
        refusal = self.refusal(self.folder)
        self.assertTrue(refusal.startswith(f"ring folder {self.folder} is a folder owned by uid {os.geteuid()} with "
                                           "mode 0777; "), refusal)

    def test_a_link_to_a_private_folder_is_refused(self):
        os.symlink(ensure_private(os.path.join(self.dir, "private")), self.folder)
        refusal = self.refusal(self.folder)
        self.assertTrue(refusal.startswith(f"ring folder {self.folder} is a symbolic link owned by uid "), refusal)

    def test_the_secret_is_not_written_into_a_refused_folder(self):
        os.mkdir(self.folder)
        os.chmod(self.folder, 0o777)
        with self.assertRaises(OSError):
            secret.from_file(os.path.join(self.folder, secret.FILE_NAME))
        self.assertEqual([], os.listdir(self.folder))


@unittest.skipUnless(os.geteuid() == 0, "giving a folder to another user needs root")
class WorkerInAFolderOfAnotherUserTest(unittest.TestCase):
    """The worker ends before it writes its secret or its socket into a ring folder someone else made first, with or
    without the secret in its environment."""

    def test_the_worker_refuses_it_and_writes_nothing_there(self):
        for given_secret in (None, "from-the-environment-0123"):
            with self.subTest(secret_in_environment=given_secret is not None):
                dir = tempfile.mkdtemp()
                self.addCleanup(shutil.rmtree, dir)
                folder = os.path.join(dir, "rings")
                os.mkdir(folder)
                os.chmod(folder, 0o777)
                os.chown(folder, OTHER_UID, -1)
                env = {k: v for k, v in os.environ.items() if k != secret.ENV}
                if given_secret:
                    env[secret.ENV] = given_secret
                worker = subprocess.run([sys.executable, "-B", RUNTIME, "--unix-socket", "--ring-dir", folder],
                                        env=env, capture_output=True, text=True, timeout=30)
                self.assertEqual(1, worker.returncode, worker.stdout + worker.stderr)
                self.assertIn(f"ring folder {folder} is a folder owned by uid {OTHER_UID} with mode 0777",
                              worker.stderr)
                self.assertEqual("", worker.stdout)
                self.assertEqual([], os.listdir(folder))


if __name__ == "__main__":
    unittest.main()
