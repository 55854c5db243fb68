package org.flinkbridge.protocol;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** A ring folder is used only when it is a folder of this user with mode 0700; a missing one is made so. */
class RingFolderTest {

    /** The uid of nobody: a user other than the one running the tests (root). */
    private static final int OTHER_UID = 65534;

    @Test
    void aMissingFolderIsMadePrivateWithItsParents(@TempDir Path dir) throws IOException {
        Path folder = dir.resolve("shared/rings");

        RingFolder.ensurePrivate(folder);
        RingFolder.ensurePrivate(folder);

        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(folder)));
    }

    @Test
    void aFolderOfAnotherUserIsRefusedNamingItsOwnerAndMode(@TempDir Path dir) throws IOException {
        assumeTrue("root".equals(System.getProperty("user.name")), "giving a folder to another user needs root");
        Path folder = Files.createDirectory(dir.resolve("rings"), PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwx------")));
        Files.setAttribute(folder, "unix:uid", OTHER_UID);

        String refusal = assertThrows(IOException.class, () -> RingFolder.ensurePrivate(folder)).getMessage();

        assertTrue(refusal.startsWith("ring folder " + folder + " is a folder owned by uid " + OTHER_UID
                + " with mode 0700; it must be a folder (not a link) owned by this process's user (uid 0)"), refusal);
        assertTrue(refusal.contains("Remove it, or name another folder"), refusal);
    }

    @Test
    void aFolderOthersCanWriteIsRefused(@TempDir Path dir) throws IOException {
        Path folder = Files.createDirectory(dir.resolve("rings"));
        Files.setPosixFilePermissions(folder, PosixFilePermissions.fromString("rwxrwxrwx"));

        String refusal = assertThrows(IOException.class, () -> RingFolder.ensurePrivate(folder)).getMessage();

        assertTrue(refusal.startsWith("ring folder " + folder + " is a folder owned by uid "), refusal);
        assertTrue(refusal.contains(" with mode 0777; "), refusal);
    }

    /** A link is refused even to a good folder: whoever owns the link's folder could point it elsewhere later. */
    @Test
    void aLinkToAPrivateFolderIsRefused(@TempDir Path dir) throws IOException {
        Path target = RingFolder.ensurePrivate(dir.resolve("private"));
        Path link = Files.createSymbolicLink(dir.resolve("rings"), target);

        String refusal = assertThrows(IOException.class, () -> RingFolder.ensurePrivate(link)).getMessage();

        assertTrue(refusal.startsWith("ring folder " + link + " is a symbolic link owned by uid "), refusal);
        assertTrue(Files.isSymbolicLink(link) && Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void aFileInTheFoldersPlaceIsRefused(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("rings"), "");

        String refusal = assertThrows(IOException.class, () -> RingFolder.ensurePrivate(file)).getMessage();

        assertTrue(refusal.startsWith("ring folder " + file + " is not a folder owned by uid "), refusal);
    }
}
