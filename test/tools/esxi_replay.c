/*
 * esxi_replay - replays, through libiscsi, the SCSI commands VMware ESXi sends when it claims a
 * path to an iSCSI LUN and creates/mounts a VMFS 6 datastore on it, and checks every answer.
 *
 * What ESXi sends, and where that is documented (public sources; the byte layouts are SPC-4,
 * SBC-3/SBC-4 and SAM-5):
 *
 *  1. Path discovery (ScsiScan / ScsiUid / VMW_SATP claim). A capture of ESXi 5.5 shows REPORT
 *     LUNS first, then INQUIRY of the LUNs listed (TalAloni/iSCSIConsole issue #6); a target's
 *     log of an ESXi login shows TEST UNIT READY, standard INQUIRY, VPD 00h, VPD 80h (serial),
 *     VPD 83h (device identification) in that order, and ESXi logging "Failed to read VPD
 *     Extended Inquiry page" when 86h is missing - harmless (SPDK issue #405, "SPDK iSCSI
 *     target doesn't support VMware ESXi iSCSI initiator"). The block pages B0h/B1h/B2h are
 *     read when VPD 00h lists them (they carry what `esxcli ... vaai status` shows). The device
 *     is named after the NAA designator of VPD 83h: "naa.6001405..." in esxcli output
 *     (tcmu-runner PR #139; "VMWARE SCSI Id: Could not get disk id" when VPD 83h is missing,
 *     quantum/esos issue #200). A LUN without a stable NAA is a new device to ESXi after a
 *     restart (vSphere Storage, "Detecting PDL Conditions": "its unique ID changes").
 *  2. Unit attention: the first TEST UNIT READY of a new I_T nexus reports 06/29/xx and the
 *     initiator sends it again (SAM-5 5.14 / 6.3; INQUIRY and REPORT LUNS do not clear it).
 *  3. Capacity and caching: READ CAPACITY(10) and (16) (opcode 9Eh in ESXi logs, esos #200),
 *     LBPME tells ESXi the LUN is thin and may get UNMAP ("Delete Status" in
 *     `esxcli storage core device vaai status get`); MODE SENSE(6) (1Ah in ESXi's ScsiDeviceIO
 *     log lines, esos #200 and tcmu-runner issue #197) of all pages, caching (08h) and
 *     control (0Ah).
 *  4. ALUA: TPGS in standard INQUIRY makes VMW_SATP_ALUA claim the device; it reads the port
 *     groups with REPORT TARGET PORT GROUPS and shows them as {TPG_id=..,TPG_state=AO/ANO/
 *     STBY} (Broadcom KB 310442 "ALUA parameters in ESXi server"; vSphere Storage "VMW_SATP_ALUA
 *     ... VMW_PSP_MRU selects an active/optimized path"). A standby path must answer media
 *     commands with NOT READY 04/0Bh (ALUA standby, SPC-4 5.15.2.4.4), never with 05/25/00:
 *     ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED is what ESXi takes for permanent device loss
 *     (vSphere Storage, "Permanent Device Loss and SCSI Sense Codes": "H:0x0 D:0x2 P:0x0 Valid
 *     sense data: 0x5 0x25 0x0").
 *  5. VAAI support: ESXi's primitives map to T10 commands - ATS = COMPARE AND WRITE (89h),
 *     Clone = EXTENDED COPY (83h), Zero = WRITE SAME (93h), Delete = UNMAP (42h) (wahlnetwork
 *     "The Many Names and Aliases of VAAI Primitives"; Dell SC Series VMware best practices,
 *     "16.3 vStorage APIs for array integration"). Whether a LUN has them is asked with REPORT
 *     SUPPORTED OPERATION CODES (MAINTENANCE IN A3h/0Ch - the "Command 0xa3 not supported"
 *     warnings of tcmu-runner issues #292/#323 come from initiators probing it) and the
 *     3PC bit / third-party copy VPD page 8Fh for XCOPY.
 *  6. Reservations: ESXi uses ATS instead of SCSI reservations for VMFS locking
 *     (quadstor "VAAI introduction"). PERSISTENT RESERVE IN/OUT (READ KEYS, REPORT
 *     CAPABILITIES, REGISTER, RESERVE Write Exclusive - Registrants Only, RELEASE, unregister)
 *     is replayed from SPC-4 6.15/6.16, not from an ESXi capture (none among the sources above
 *     shows it; clustered guests on raw device mappings are what would send it). ESXi sends SCSI-2
 *     RESERVE(6)/RELEASE(6) (16h/17h) when it discovers, mounts and creates datastores:
 *     tcmu-runner PR #108 ("when discovering and mounting the targets ... fail to handle the
 *     RESERVE cmd and then lead the ESXi failed with I/O errors"); SPDK issue #1414 (ESXi 6.7
 *     logs "Cmd ... 0x16 ... failed ... 0x5 0x20 0x0" right before "Failed to create FS").
 *  7. Datastore creation and mount: a GPT (LBA 0 protective MBR, LBA 1 GPT header) and a
 *     volume header in the partition are written and read back with READ(10)/READ(16)
 *     ("LVMProbeDevice" in SPDK #1414's ESXi log is the probe of that header). The blocks
 *     and their content are stand-ins: no source gives the exact LBAs ESXi reads.
 *  8. VMFS heartbeat: VMFS5/6 update their heartbeat slot with ATS (COMPARE AND WRITE of one
 *     block: the old image as compare data, the new image as write data), repeatedly; a
 *     miscompare is "ATS Miscompare detected between test and set HB images" and ends in
 *     "Lost access to volume" (Broadcom KB 2113956 / article 326437; IBM "VMware ATS
 *     heartbeating": ESXi gives a heartbeat ATS 8 s). The miscompare must be CHECK CONDITION
 *     0E/1D/00 with the offset of the first differing byte in INFORMATION (SBC-3 5.2).
 *  9. Zeroing and space reclamation: eager zeroing is WRITE SAME(16) of a zero block; VMFS6
 *     reclaims space with UNMAP in 1 MiB units and only supports unmap granularities that
 *     divide 1 MiB (vSphere Storage "Space Reclamation Requests from VMFS Datastores",
 *     "VMFS6 processes the unmap request ... only when the space to reclaim equals 1 MB or a
 *     multiple of 1 MB"). Deallocated blocks must read as zeroes (LBPRZ) and GET LBA STATUS
 *     reports them deallocated.
 * 10. Full copy: EXTENDED COPY (LID1, SPC-4 6.4) with two identification descriptor CSCD
 *     descriptors (E4h) naming the LUN by the NAA it reported, and a block-to-block segment
 *     descriptor (02h); RECEIVE COPY RESULTS / operating parameters (84h/03h) first (libiscsi
 *     PR #229 on E4h in SPC-4; LIO's target_core_xcopy matches E4h designators against its
 *     LUNs' NAA).
 * 11. SYNCHRONIZE CACHE(10)/(16) (WCE=1 in the caching page means the initiator must flush;
 *     SBC-3 5.23, not from an ESXi capture).
 *
 * Modes (--mode):
 *   claim     the whole sequence above on an active path (default)
 *   probe     prints "pr=0|1 xcopy=0|1 reserve6=0|1": whether REPORT SUPPORTED OPERATION CODES
 *             lists PERSISTENT RESERVE IN/OUT, EXTENDED COPY + RECEIVE COPY RESULTS, and
 *             RESERVE(6) + RELEASE(6)
 *   identity  login, VPD 83h: prints the NAA (with --expect-naa: must equal it)
 *   standby   the path ESXi sees as standby: same NAA, RTPG with this path's group standby
 *             and another active/optimized, media commands refused with 02/04/0B
 *   takeover  after a failover to this path: same NAA, this group active/optimized, the ATS
 *             block holds --ats-image, the heartbeat goes on from it, the unmapped range
 *             reads as zeroes, the copied blocks are there
 *
 * Output: one line per check, "ok - ..." or "FAIL - ...", "skip - ..." for steps switched
 * off; the last line counts them. Exit 0 only if nothing failed; 2 on usage errors.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

/* ------------------------------------------------------------------------------------------ */
/* Where things go on the LUN (512-byte blocks; everything below 32 MiB so a small LUN works). */

enum {
  LBA_MBR = 0,               /* protective MBR, then the GPT header at LBA 1 */
  LBA_LVM_HEADER = 4096,     /* partition at 1 MiB, LVM header 1 MiB into it */
  LVM_HEADER_BLOCKS = 16,
  LBA_HEARTBEAT = 8192,      /* the ATS heartbeat slot */
  LBA_ZERO = 16384,          /* WRITE SAME(16) zeroing, 1 MiB */
  LBA_WS_UNMAP = 20480,      /* WRITE SAME(16) with UNMAP, 1 MiB */
  LBA_UNMAP = 24576,         /* UNMAP, 1 MiB: one VMFS6 block */
  RANGE_BLOCKS = 2048,
  LBA_XCOPY_SRC = 32768,
  LBA_XCOPY_DST = 34816,
  XCOPY_BLOCKS = 8,
  MIN_LUN_BLOCKS = 65536,    /* 32 MiB */
  HB_GEN_OFFSET = 40,        /* where the heartbeat generation sits in the ATS image */
};

static const uint64_t kPrKey = 0x45535869F5A00001ull;  /* "ESXi" + a host id */
static const double kAtsTimeoutSeconds = 8.0;            /* ESXi's ATS heartbeat timeout */

/* ------------------------------------------------------------------------------------------ */
/* Reporting */

static int n_ok, n_fail, n_skip;
static int verbose;

static void vnote(int *counter, const char *word, const char *fmt, va_list ap) {
  (*counter)++;
  printf("%s - ", word);
  vprintf(fmt, ap);
  putchar('\n');
  fflush(stdout);
}
static void note(int *counter, const char *word, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(int *counter, const char *word, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(counter, word, fmt, ap);
  va_end(ap);
}
#define ok(...) note(&n_ok, "ok", __VA_ARGS__)
#define fail(...) note(&n_fail, "FAIL", __VA_ARGS__)
#define skip(...) note(&n_skip, "skip", __VA_ARGS__)

/* check(COND, "what ...", ...) : ok or FAIL with the same text. Returns COND. */
static int check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(cond ? &n_ok : &n_fail, cond ? "ok" : "FAIL", fmt, ap);
  va_end(ap);
  return cond;
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

static void hex(char *out, const uint8_t *p, int n) {
  for (int i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
  out[2 * n] = 0;
}

static int all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

static int printable(const uint8_t *p, int n) {
  for (int i = 0; i < n; i++)
    if (p[i] < 0x20 || p[i] > 0x7E) return 0;
  return 1;
}

/* A block of test data that names its LBA and a tag, so any block can be recomputed. */
static void pattern(uint8_t *buf, uint64_t lba, uint32_t blocks, uint32_t block_size, uint8_t tag) {
  for (uint32_t b = 0; b < blocks; b++) {
    uint8_t *p = buf + (size_t)b * block_size;
    memcpy(p, "FREEVSA-ESXI-RPL", 16);
    put64(p + 16, lba + b);
    p[24] = tag;
    for (uint32_t i = 25; i < block_size; i++) p[i] = (uint8_t)((lba + b) * 31 + i * 7 + tag);
  }
}

/* A heartbeat slot image: magic, a constant host id, the generation; the rest constant. */
static void heartbeat_image(uint8_t *buf, uint32_t block_size, uint64_t generation) {
  memset(buf, 0, block_size);
  memcpy(buf, "VMFS-HB-SLOT", 12);
  memcpy(buf + 16, "esxi-replay-host", 16);
  put64(buf + HB_GEN_OFFSET, generation);
  for (uint32_t i = 64; i < block_size; i++) buf[i] = (uint8_t)(i * 13);
}

/* ------------------------------------------------------------------------------------------ */
/* Sessions and answers */

struct session {
  struct iscsi_context *iscsi;
  int lun;
};

static const char *initiator_name = "iqn.1998-01.com.vmware:esxi-replay";

/* ESXi keeps one ISID per host adapter across logins, so what it registered through one
   session holds for the next: sessions with `stable_isid` log in with the same one. */
static int login_as(struct session *s, const char *url, const char *name, const char *initiator, int stable_isid) {
  s->iscsi = iscsi_create_context(initiator);
  if (s->iscsi == NULL) {
    fail("%s: cannot create an iSCSI context", name);
    return 0;
  }
  if (stable_isid) iscsi_set_isid_oui(s->iscsi, 0x000C29, 0x00E51); /* VMware's OUI */
  struct iscsi_url *u = iscsi_parse_full_url(s->iscsi, url);
  if (u == NULL) {
    fail("%s: bad URL %s: %s", name, url, iscsi_get_error(s->iscsi));
    return 0;
  }
  s->lun = u->lun;
  iscsi_set_targetname(s->iscsi, u->target);
  iscsi_set_session_type(s->iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(s->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
  if (u->user[0]) iscsi_set_initiator_username_pwd(s->iscsi, u->user, u->passwd);
  iscsi_set_timeout(s->iscsi, 30);
  if (verbose) {
    iscsi_set_log_level(s->iscsi, 10);
    iscsi_set_log_fn(s->iscsi, iscsi_log_to_stderr);
  }
  /* Connect and log in, and nothing else: iscsi_full_connect_sync would send a TEST UNIT
     READY of its own, and the first commands of the session are what this tool checks. */
  int good = iscsi_connect_sync(s->iscsi, u->portal) == 0 && iscsi_login_sync(s->iscsi) == 0;
  if (!good) fail("%s: login to %s failed: %s", name, url, iscsi_get_error(s->iscsi));
  iscsi_destroy_url(u);
  return good;
}

static int login(struct session *s, const char *url, const char *name) { return login_as(s, url, name, initiator_name, 0); }

static void logout(struct session *s) {
  if (s->iscsi == NULL) return;
  iscsi_logout_sync(s->iscsi);
  iscsi_destroy_context(s->iscsi);
  s->iscsi = NULL;
}

/* The sense of a CHECK CONDITION: key, ASC, ASCQ, and the raw fixed-format bytes (libiscsi
   keeps the Data-In of a CHECK CONDITION with its 2-byte SenseLength in front). */
struct sense {
  int valid;
  int key, asc, ascq;
  const uint8_t *raw;
  int raw_len;
};

static struct sense sense_of(const struct scsi_task *t) {
  struct sense s = {0};
  if (t == NULL || t->status != SCSI_STATUS_CHECK_CONDITION) return s;
  s.valid = 1;
  s.key = t->sense.key;
  s.asc = (t->sense.ascq >> 8) & 0xFF;
  s.ascq = t->sense.ascq & 0xFF;
  if (t->datain.data != NULL && t->datain.size > 2) {
    s.raw = t->datain.data + 2;
    s.raw_len = t->datain.size - 2;
  }
  return s;
}

/* A one-line description of an answer: "GOOD", "CHECK CONDITION 05/24/00", ... */
static const char *answer(struct session *s, const struct scsi_task *t) {
  static char buf[256];
  if (t == NULL) {
    snprintf(buf, sizeof buf, "no answer (%s)", iscsi_get_error(s->iscsi));
  } else if (t->status == SCSI_STATUS_GOOD) {
    snprintf(buf, sizeof buf, "GOOD");
  } else if (t->status == SCSI_STATUS_CHECK_CONDITION) {
    struct sense k = sense_of(t);
    snprintf(buf, sizeof buf, "CHECK CONDITION %02X/%02X/%02X", k.key, k.asc, k.ascq);
  } else {
    snprintf(buf, sizeof buf, "status 0x%02x", t->status);
  }
  return buf;
}

static int is_good(const struct scsi_task *t) { return t != NULL && t->status == SCSI_STATUS_GOOD; }
static int is_ua(const struct scsi_task *t) {
  return t != NULL && t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION;
}
static int is_sense(const struct scsi_task *t, int key, int asc, int ascq) {
  struct sense k = sense_of(t);
  return k.valid && k.key == key && k.asc == asc && k.ascq == ascq;
}

/* GOOD, or FAIL naming the answer. */
static int good(struct session *s, struct scsi_task *t, const char *what) {
  if (is_good(t)) return 1;
  fail("%s: %s", what, answer(s, t));
  return 0;
}

static void done(struct scsi_task **t) {
  if (*t) scsi_free_scsi_task(*t);
  *t = NULL;
}

/* Data-In of a GOOD answer, at least `min` bytes; FAIL otherwise. */
static const uint8_t *data_in(struct session *s, struct scsi_task *t, int min, const char *what) {
  if (!good(s, t, what)) return NULL;
  if (t->datain.size < min) {
    fail("%s: %d bytes of Data-In, at least %d expected", what, t->datain.size, min);
    return NULL;
  }
  return t->datain.data;
}

/* Commands other than INQUIRY, REPORT LUNS and REQUEST SENSE report pending unit attentions
   (SAM-5 5.14); an initiator sends them again. So does this tool wherever the unit attention
   is not what is being checked. RETRY_UA(t, call) runs call again while it answers UNIT ATTENTION, at most 4 times. */
#define RETRY_UA(t, call)                                          \
  do {                                                             \
    (t) = (call);                                                  \
    for (int retry_ = 0; retry_ < 4 && is_ua(t); retry_++) {       \
      scsi_free_scsi_task(t);                                      \
      (t) = (call);                                                \
    }                                                              \
  } while (0)

/* ------------------------------------------------------------------------------------------ */
/* The commands libiscsi 1.19 has no helper for, or one with another name */

/* REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0Ah), length-only or extended
   header parameter data. */
static struct scsi_task *report_target_port_groups(struct session *s, int extended, uint32_t alloc) {
  uint8_t cdb[12] = {0xA3, (uint8_t)((extended ? 0x20 : 0x00) | 0x0A)};
  put32(cdb + 6, alloc);
  struct scsi_task *t = scsi_create_task(sizeof cdb, cdb, SCSI_XFER_READ, (int)alloc);
  if (t == NULL) return NULL;
  struct scsi_task *r = iscsi_scsi_command_sync(s->iscsi, s->lun, t, NULL);
  if (r == NULL) scsi_free_scsi_task(t);
  return r;
}

static struct scsi_task *receive_copy_operating_parameters(struct session *s, uint32_t alloc) {
  return iscsi_receive_copy_results_sync(s->iscsi, s->lun, SCSI_COPY_RESULTS_OP_PARAMS, 0, (int)alloc);
}

/* ------------------------------------------------------------------------------------------ */
/* What the LUN told us */

struct lun_facts {
  uint8_t naa[16];
  int naa_len;
  char naa_name[40];      /* "naa.6..." */
  int have_rtp, have_tpg;
  uint16_t rel_port, tpg;
  uint32_t block_size;
  uint64_t blocks;
  int lbpme, lbprz;
  int vpd_b2_lbprz, vpd_b2_lbpu, vpd_b2_lbpws;
  uint32_t unmap_granularity;
  int pages[256];         /* VPD pages listed in VPD 00h */
  int threepc;
  int op_pr_in, op_pr_out, op_xcopy, op_rcr, op_reserve6;  /* REPORT SUPPORTED OPERATION CODES */
};

/* VPD 83h: the NAA designator (LU association), relative target port and target port group
   (target port association). */
static int read_device_identification(struct session *s, struct lun_facts *f, int quiet) {
  struct scsi_task *t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0x83, 255);
  const uint8_t *d = data_in(s, t, 4, "VPD 83h (device identification)");
  if (d == NULL) {
    done(&t);
    return 0;
  }
  int size = t->datain.size;
  int page_len = be16(d + 2);
  int good_layout = d[1] == 0x83 && 4 + page_len == size;
  int naa_count = 0, bad_walk = 0;
  f->have_rtp = f->have_tpg = 0;
  for (int at = 4; at < 4 + page_len;) {
    if (at + 4 > size || at + 4 + d[at + 3] > size) {
      bad_walk = 1;
      break;
    }
    int code_set = d[at] & 0x0F, assoc = (d[at + 1] >> 4) & 3, type = d[at + 1] & 0x0F;
    int len = d[at + 3];
    const uint8_t *v = d + at + 4;
    if (assoc == 0 && type == 3) {
      naa_count++;
      if (code_set == 1 && len <= 16) {
        memcpy(f->naa, v, (size_t)len);
        f->naa_len = len;
      }
    } else if (assoc == 1 && type == 4 && len == 4) {
      f->have_rtp = 1;
      f->rel_port = be16(v + 2);
    } else if (assoc == 1 && type == 5 && len == 4) {
      f->have_tpg = 1;
      f->tpg = be16(v + 2);
    }
    at += 4 + len;
  }
  if (!quiet) {
    check(good_layout && !bad_walk, "VPD 83h: page code 83h, page length %d matches the %d bytes sent, designators walk to the end",
          page_len, size);
  }
  int naa_ok = naa_count == 1 && f->naa_len == 16 && (f->naa[0] >> 4) == 6;
  if (naa_ok) {
    char h[33];
    hex(h, f->naa, 16);
    snprintf(f->naa_name, sizeof f->naa_name, "naa.%s", h);
  }
  if (!quiet) {
    check(naa_ok, "VPD 83h: one NAA designator of the logical unit, binary, 16 bytes, NAA 6 (IEEE Registered Extended): ESXi names the device %s",
          naa_ok ? f->naa_name : "(none)");
    check(f->have_rtp, "VPD 83h: relative target port designator (type 4h, target port association): port %u", f->rel_port);
    check(f->have_tpg, "VPD 83h: target port group designator (type 5h): group %u", f->tpg);
  }
  done(&t);
  return naa_ok && f->have_tpg;
}

/* REPORT TARGET PORT GROUPS: finds group `tpg`, returns its state (or -1); counts the groups
   that are active/optimized. Checks the layout once. */
struct rtpg_result {
  int found, state, count, ao_groups, standby_groups, port_listed, supports;
};

static const char *alua_state_name(int state) {
  switch (state) {
    case 0x0: return "active/optimized";
    case 0x1: return "active/non-optimized";
    case 0x2: return "standby";
    case 0x3: return "unavailable";
    case 0xE: return "offline";
    case 0xF: return "transitioning";
    case -1: return "not listed";
    default: return "reserved";
  }
}

static struct rtpg_result rtpg(struct session *s, const struct lun_facts *f, int extended, const char *label) {
  struct rtpg_result r = {0};
  r.state = -1;
  struct scsi_task *t;
  RETRY_UA(t, report_target_port_groups(s, extended, 1024));
  char what[128];
  snprintf(what, sizeof what, "%s: REPORT TARGET PORT GROUPS (%s)", label, extended ? "extended header" : "length only");
  const uint8_t *d = data_in(s, t, 4, what);
  if (d == NULL) {
    done(&t);
    return r;
  }
  int size = t->datain.size;
  uint32_t len = be32(d);
  int at = 4, layout = 4 + (int)len == size;
  if (extended) {
    layout = layout && size >= 8 && (d[4] >> 4 & 7) == 1;
    at = 8;
  }
  while (layout && at < size) {
    if (at + 8 > size || at + 8 + 4 * d[at + 7] > size) {
      layout = 0;
      break;
    }
    int state = d[at] & 0x0F;
    uint16_t id = be16(d + at + 2);
    r.count++;
    if (state == 0) r.ao_groups++;
    if (state == 2) r.standby_groups++;
    if (id == f->tpg) {
      r.found = 1;
      r.state = state;
      r.supports = d[at + 1];
      for (int p = 0; p < d[at + 7]; p++)
        if (be16(d + at + 8 + 4 * p + 2) == f->rel_port) r.port_listed = 1;
    }
    at += 8 + 4 * d[at + 7];
  }
  check(layout, "%s: return data length %u matches the %d bytes sent%s, descriptors walk to the end (%d groups)", what, len, size,
        extended ? ", format type 1" : "", r.count);
  done(&t);
  return r;
}

/* ------------------------------------------------------------------------------------------ */
/* The claim sequence */

static void step_report_luns(struct session *s) {
  struct scsi_task *t = iscsi_reportluns_sync(s->iscsi, 0, 1024);
  const uint8_t *d = data_in(s, t, 8, "REPORT LUNS (answered with a unit attention pending)");
  if (d) {
    uint32_t len = be32(d);
    int listed = 0;
    for (uint32_t at = 8; at + 8 <= 8 + len && (int)at + 8 <= t->datain.size; at += 8)
      if ((d[at] & 0x3F) == 0 && d[at + 1] == s->lun && all_zero(d + at + 2, 6)) listed = 1;
    check(len % 8 == 0 && len >= 8 && (int)(8 + len) == t->datain.size && listed,
          "REPORT LUNS: LUN LIST LENGTH %u (a multiple of 8, all sent), LUN %d listed", len, s->lun);
  }
  done(&t);
}

static void step_standard_inquiry(struct session *s, struct lun_facts *f) {
  /* A short allocation length first (36 bytes, as SCSI scanners ask), then all of it. */
  struct scsi_task *t = iscsi_inquiry_sync(s->iscsi, s->lun, 0, 0, 36);
  const uint8_t *d = data_in(s, t, 36, "standard INQUIRY, 36 bytes");
  if (d) {
    check(t->datain.size == 36, "standard INQUIRY honours an allocation length of 36 (%d bytes sent)", t->datain.size);
    int additional = d[4];
    done(&t);
    t = iscsi_inquiry_sync(s->iscsi, s->lun, 0, 0, 255);
    d = data_in(s, t, 36, "standard INQUIRY, 255 bytes");
    if (d) {
      check(t->datain.size == 5 + additional && d[4] == additional,
            "standard INQUIRY: ADDITIONAL LENGTH %d, %d bytes sent for 255 asked", additional, t->datain.size);
      check(d[0] == 0x00, "standard INQUIRY: peripheral qualifier 0, device type 0 (direct access block device)");
      check((d[1] & 0x80) == 0, "standard INQUIRY: RMB=0 (not removable)");
      check(d[2] >= 5, "standard INQUIRY: VERSION %02Xh (SPC-3 or later, needed for the T10 VAAI commands)", d[2]);
      check((d[3] & 0x0F) == 2, "standard INQUIRY: RESPONSE DATA FORMAT 2");
      int tpgs = (d[5] >> 4) & 3;
      check(tpgs != 0, "standard INQUIRY: TPGS=%d%s (ALUA: VMW_SATP_ALUA claims the device)", tpgs,
            tpgs == 1 ? " implicit" : tpgs == 2 ? " explicit" : tpgs == 3 ? " implicit+explicit" : "");
      f->threepc = (d[5] >> 3) & 1;
      check((d[7] & 0x02) != 0, "standard INQUIRY: CMDQUE=1 (command queuing)");
      int vendor_ok = printable(d + 8, 8) && d[8] != ' ', product_ok = printable(d + 16, 16) && d[16] != ' ';
      check(vendor_ok && product_ok && printable(d + 32, 4),
            "standard INQUIRY: vendor '%.8s', product '%.16s', revision '%.4s' (printable ASCII: SATP claim rules match vendor/model)",
            d + 8, d + 16, d + 32);
    }
  }
  done(&t);
}

static void step_vpd_pages(struct session *s, struct lun_facts *f, int want_xcopy) {
  struct scsi_task *t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0x00, 255);
  const uint8_t *d = data_in(s, t, 4, "VPD 00h (supported pages)");
  if (d) {
    int n = be16(d + 2), ascending = 1;
    check(d[1] == 0x00 && 4 + n == t->datain.size, "VPD 00h: page code 00h, page length %d, all sent", n);
    for (int i = 0; i < n && 4 + i < t->datain.size; i++) {
      f->pages[d[4 + i]] = 1;
      if (i > 0 && d[4 + i] <= d[3 + i]) ascending = 0;
    }
    check(ascending && f->pages[0x00], "VPD 00h: pages in ascending order, 00h itself listed");
    check(f->pages[0x80] && f->pages[0x83] && f->pages[0xB0] && f->pages[0xB2],
          "VPD 00h lists 80h, 83h, B0h, B2h (serial, identification, block limits, provisioning)");
    if (want_xcopy) check(f->pages[0x8F], "VPD 00h lists 8Fh (third-party copy)");
  }
  done(&t);

  t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0x80, 255);
  d = data_in(s, t, 4, "VPD 80h (unit serial number)");
  if (d) {
    int n = be16(d + 2);
    check(d[1] == 0x80 && n > 0 && 4 + n == t->datain.size && printable(d + 4, n),
          "VPD 80h: serial '%.*s' (%d printable ASCII bytes)", n, d + 4, n);
  }
  done(&t);

  read_device_identification(s, f, 0);

  t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0xB0, 255);
  d = data_in(s, t, 0x40, "VPD B0h (block limits)");
  if (d) {
    f->unmap_granularity = be32(d + 28);
    uint32_t max_unmap = be32(d + 20), max_desc = be32(d + 24);
    uint64_t max_ws = be64(d + 36);
    check(d[1] == 0xB0 && be16(d + 2) == 0x3C, "VPD B0h: page code B0h, page length 3Ch");
    check(d[5] >= 1, "VPD B0h: MAXIMUM COMPARE AND WRITE LENGTH %u (ESXi's ATS needs 1)", d[5]);
    check(max_unmap > 0 && max_desc > 0, "VPD B0h: MAXIMUM UNMAP LBA COUNT %u, MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT %u", max_unmap, max_desc);
    check(f->unmap_granularity > 0 && (1048576 / 512) % f->unmap_granularity == 0,
          "VPD B0h: OPTIMAL UNMAP GRANULARITY %u blocks divides 1 MiB (VMFS6 reclaims 1 MiB blocks)", f->unmap_granularity);
    check(max_ws >= RANGE_BLOCKS, "VPD B0h: MAXIMUM WRITE SAME LENGTH %" PRIu64 " blocks", max_ws);
    check(be32(d + 8) == 0 || be32(d + 8) >= RANGE_BLOCKS, "VPD B0h: MAXIMUM TRANSFER LENGTH %u blocks (0 or at least 1 MiB)", be32(d + 8));
  }
  done(&t);

  if (f->pages[0xB1]) {
    t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0xB1, 255);
    d = data_in(s, t, 0x40, "VPD B1h (block device characteristics)");
    if (d) check(d[1] == 0xB1 && be16(d + 2) == 0x3C, "VPD B1h: page code B1h, page length 3Ch, medium rotation rate %u", be16(d + 4));
    done(&t);
  }

  t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0xB2, 255);
  d = data_in(s, t, 8, "VPD B2h (logical block provisioning)");
  if (d) {
    f->vpd_b2_lbpu = d[5] >> 7 & 1;
    f->vpd_b2_lbpws = d[5] >> 6 & 1;
    f->vpd_b2_lbprz = (d[5] >> 2 & 7) != 0;
    check(d[1] == 0xB2 && be16(d + 2) >= 4 && 4 + be16(d + 2) == t->datain.size, "VPD B2h: page code B2h, page length %u", be16(d + 2));
    check(f->vpd_b2_lbpu && f->vpd_b2_lbpws, "VPD B2h: LBPU=1 (UNMAP) and LBPWS=1 (WRITE SAME(16) with UNMAP): ESXi's Delete primitive");
    check(f->vpd_b2_lbprz, "VPD B2h: LBPRZ - unmapped blocks read as zeroes");
  }
  done(&t);

  if (!want_xcopy) return;
  t = iscsi_inquiry_sync(s->iscsi, s->lun, 1, 0x8F, 1024);
  d = data_in(s, t, 4, "VPD 8Fh (third-party copy)");
  if (d) {
    int n = be16(d + 2), size = t->datain.size, walk = 1, lists_xcopy = 0, has_commands = 0;
    for (int at = 4; at < 4 + n;) {
      if (at + 4 > size || at + 4 + be16(d + at + 2) > size) {
        walk = 0;
        break;
      }
      uint16_t type = be16(d + at), len = be16(d + at + 2);
      if (type == 0x0001 && len >= 1) { /* Supported Commands: LIST LENGTH, then per command */
        has_commands = 1;
        const uint8_t *c = d + at + 4;
        for (int i = 1; i + 1 < 1 + c[0] && i + 1 < len;) {
          if (c[i] == 0x83) lists_xcopy = 1;
          i += 2 + c[i + 1];
        }
      }
      at += 4 + len;
    }
    check(d[1] == 0x8F && 4 + n == size && walk, "VPD 8Fh: page code 8Fh, page length %d, third-party copy descriptors walk to the end", n);
    if (has_commands) check(lists_xcopy, "VPD 8Fh: the Supported Commands descriptor lists EXTENDED COPY (83h)");
  }
  done(&t);
}

static void step_test_unit_ready(struct session *s) {
  struct scsi_task *t = iscsi_testunitready_sync(s->iscsi, s->lun);
  check(is_ua(t) && sense_of(t).asc == 0x29,
        "TEST UNIT READY, first of the session: UNIT ATTENTION 06/29/xx (power on, reset or I_T nexus loss), got %s", answer(s, t));
  done(&t);
  t = iscsi_testunitready_sync(s->iscsi, s->lun);
  check(is_good(t), "TEST UNIT READY again after the unit attention: %s", answer(s, t));
  done(&t);
}

static void step_read_capacity(struct session *s, struct lun_facts *f, uint64_t expect_bytes) {
  struct scsi_task *t = iscsi_readcapacity16_sync(s->iscsi, s->lun);
  const uint8_t *d = data_in(s, t, 32, "READ CAPACITY(16)");
  if (d) {
    f->blocks = be64(d) + 1;
    f->block_size = be32(d + 8);
    f->lbpme = d[14] >> 7 & 1;
    f->lbprz = d[14] >> 6 & 1;
    check(f->block_size == 512 || f->block_size == 4096, "READ CAPACITY(16): block length %u", f->block_size);
    check(expect_bytes == 0 || f->blocks * f->block_size == expect_bytes,
          "READ CAPACITY(16): %" PRIu64 " blocks = %" PRIu64 " bytes%s", f->blocks, f->blocks * f->block_size,
          expect_bytes ? " as configured" : "");
    check((d[12] & 1) == 0, "READ CAPACITY(16): PROT_EN=0 (no protection information)");
    check(f->lbpme == 1, "READ CAPACITY(16): LBPME=1 - thin provisioned, ESXi may UNMAP");
    check(f->lbprz == f->vpd_b2_lbprz, "READ CAPACITY(16): LBPRZ=%d agrees with VPD B2h", f->lbprz);
    struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);
    check(rc != NULL && rc->returned_lba + 1 == f->blocks && rc->block_length == f->block_size && rc->lbpme == f->lbpme,
          "READ CAPACITY(16) as libiscsi decodes it: the same LBA, block length and LBPME");
  }
  done(&t);

  t = iscsi_readcapacity10_sync(s->iscsi, s->lun, 0, 0);
  d = data_in(s, t, 8, "READ CAPACITY(10)");
  if (d && f->blocks) {
    uint32_t last = be32(d);
    uint32_t expect = f->blocks - 1 > 0xFFFFFFFEull ? 0xFFFFFFFF : (uint32_t)(f->blocks - 1);
    check(last == expect && be32(d + 4) == f->block_size,
          "READ CAPACITY(10): last LBA %u, block length %u, agreeing with READ CAPACITY(16)", last, be32(d + 4));
  }
  done(&t);
}

static void step_mode_sense(struct session *s, const struct lun_facts *f) {
  struct scsi_task *t = iscsi_modesense6_sync(s->iscsi, s->lun, 0, SCSI_MODESENSE_PC_CURRENT, 0x3F, 0, 255);
  const uint8_t *d = data_in(s, t, 4, "MODE SENSE(6), all pages (3Fh)");
  if (d) {
    int size = t->datain.size, bdl = d[3], walk = 1, caching = 0, control = 0;
    check(d[0] + 1 == size, "MODE SENSE(6) all pages: MODE DATA LENGTH %d matches the %d bytes sent", d[0], size);
    check((d[2] & 0x80) == 0, "MODE SENSE(6): WP=0 (not write protected)");
    if (bdl == 8 && size >= 12) {
      uint32_t blocks = be32(d + 4);
      uint64_t expect = f->blocks > 0xFFFFFFFFull ? 0xFFFFFFFFull : f->blocks;
      check(blocks == expect && be24(d + 9) == f->block_size,
            "MODE SENSE(6) block descriptor: %u blocks of %u bytes, as READ CAPACITY says", blocks, be24(d + 9));
    } else {
      check(bdl == 0, "MODE SENSE(6): BLOCK DESCRIPTOR LENGTH %d (0 or 8)", bdl);
    }
    for (int at = 4 + bdl; at < size;) {
      if (at + 2 > size || at + 2 + d[at + 1] > size) {
        walk = 0;
        break;
      }
      if ((d[at] & 0x3F) == 0x08) caching = 1;
      if ((d[at] & 0x3F) == 0x0A) control = 1;
      at += 2 + d[at + 1];
    }
    check(walk && caching && control, "MODE SENSE(6) all pages: the pages walk to the end, caching (08h) and control (0Ah) among them");
  }
  done(&t);

  t = iscsi_modesense6_sync(s->iscsi, s->lun, 1, SCSI_MODESENSE_PC_CURRENT, 0x08, 0, 255);
  d = data_in(s, t, 4, "MODE SENSE(6), caching page (08h)");
  if (d) {
    int bdl = d[3], at = 4 + bdl;
    int ok_layout = t->datain.size >= at + 2 + 0x12 && (d[at] & 0x3F) == 0x08 && d[at + 1] == 0x12;
    check(ok_layout && d[0] + 1 == t->datain.size, "MODE SENSE(6) caching page (DBD=1): page 08h, length 12h%s",
          ok_layout ? ((d[at + 2] & 0x04) ? ", WCE=1: ESXi sends SYNCHRONIZE CACHE" : ", WCE=0") : "");
  }
  done(&t);

  t = iscsi_modesense6_sync(s->iscsi, s->lun, 1, SCSI_MODESENSE_PC_CURRENT, 0x0A, 0, 255);
  d = data_in(s, t, 4, "MODE SENSE(6), control page (0Ah)");
  if (d) {
    int at = 4 + d[3];
    int ok_layout = t->datain.size >= at + 2 + 0x0A && (d[at] & 0x3F) == 0x0A && d[at + 1] == 0x0A;
    check(ok_layout, "MODE SENSE(6) control page: page 0Ah, length 0Ah");
    if (ok_layout) check((d[at + 2] & 0x04) == 0, "MODE SENSE(6) control page: D_SENSE=0 - fixed format sense, which the miscompare offset below is read from");
  }
  done(&t);
}

static void step_alua(struct session *s, const struct lun_facts *f) {
  for (int extended = 0; extended <= 1; extended++) {
    struct rtpg_result r = rtpg(s, f, extended, "active path");
    if (!check(r.found, "RTPG lists the target port group %u that VPD 83h names", f->tpg)) continue;
    check(r.state == 0, "RTPG: group %u is %s (active/optimized expected)", f->tpg, alua_state_name(r.state));
    check(r.port_listed, "RTPG: group %u lists relative target port %u (VPD 83h's)", f->tpg, f->rel_port);
    check((r.supports & 0x01) && (r.supports & 0x04), "RTPG: group %u supports active/optimized and standby (AO_SUP, S_SUP: %02Xh)",
          f->tpg, r.supports);
    check(r.ao_groups == 1, "RTPG: exactly one group is active/optimized (%d of %d)", r.ao_groups, r.count);
  }
}

/* REPORT SUPPORTED OPERATION CODES, all commands: which VAAI commands the LUN has. */
static int op_listed(const uint8_t *d, int size, uint8_t opcode, int sa) {
  for (int at = 4; at + 8 <= size;) {
    int servactv = d[at + 5] & 1, ctdp = d[at + 5] >> 1 & 1;
    if (d[at] == opcode && (sa < 0 ? !servactv : (servactv && be16(d + at + 2) == sa))) return 1;
    at += 8 + (ctdp ? 12 : 0);
  }
  return 0;
}

static int read_opcodes(struct session *s, struct lun_facts *f, int quiet) {
  struct scsi_task *t;
  RETRY_UA(t, iscsi_report_supported_opcodes_sync(s->iscsi, s->lun, 0, SCSI_REPORT_SUPPORTING_OPS_ALL, 0, 0, 65535));
  const uint8_t *d = data_in(s, t, 4, "REPORT SUPPORTED OPERATION CODES (all)");
  if (d == NULL) {
    done(&t);
    return 0;
  }
  int size = t->datain.size, walk = 1;
  uint32_t len = be32(d);
  for (int at = 4; at < 4 + (int)len;) {
    if (at + 8 > size) {
      walk = 0;
      break;
    }
    at += 8 + ((d[at + 5] & 2) ? 12 : 0);
    if (at > size) walk = 0;
  }
  f->op_pr_in = op_listed(d, size, 0x5E, 0) && op_listed(d, size, 0x5E, 1) && op_listed(d, size, 0x5E, 2);
  f->op_pr_out = op_listed(d, size, 0x5F, 0) && op_listed(d, size, 0x5F, 1) && op_listed(d, size, 0x5F, 2);
  f->op_xcopy = op_listed(d, size, 0x83, 0);
  f->op_rcr = op_listed(d, size, 0x84, 3);
  f->op_reserve6 = op_listed(d, size, 0x16, -1) && op_listed(d, size, 0x17, -1);
  if (!quiet) {
    check(4 + (int)len == size && walk, "REPORT SUPPORTED OPERATION CODES: COMMAND DATA LENGTH %u, all sent, descriptors walk to the end", len);
    struct { uint8_t op; int sa; const char *name; } need[] = {
        {0x89, -1, "COMPARE AND WRITE (ATS)"}, {0x93, -1, "WRITE SAME(16) (Zero)"}, {0x42, -1, "UNMAP (Delete)"},
        {0x28, -1, "READ(10)"}, {0x88, -1, "READ(16)"}, {0x8A, -1, "WRITE(16)"}, {0x35, -1, "SYNCHRONIZE CACHE(10)"},
        {0x9E, 0x10, "READ CAPACITY(16)"}, {0x9E, 0x12, "GET LBA STATUS"}, {0xA3, 0x0A, "REPORT TARGET PORT GROUPS"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
      check(op_listed(d, size, need[i].op, need[i].sa), "REPORT SUPPORTED OPERATION CODES lists %s", need[i].name);
    printf("# PERSISTENT RESERVE IN/OUT %s, EXTENDED COPY/RECEIVE COPY RESULTS %s, RESERVE(6)/RELEASE(6) %s\n",
           f->op_pr_in && f->op_pr_out ? "listed" : "not listed", f->op_xcopy && f->op_rcr ? "listed" : "not listed",
           f->op_reserve6 ? "listed" : "not listed");
  }
  done(&t);
  if (quiet) return 1;

  /* The one-command form ESXi uses to ask about ATS. */
  t = iscsi_report_supported_opcodes_sync(s->iscsi, s->lun, 0, SCSI_REPORT_SUPPORTING_OPCODE, 0x89, 0, 255);
  d = data_in(s, t, 4, "REPORT SUPPORTED OPERATION CODES, COMPARE AND WRITE only");
  if (d) {
    int cdb_len = be16(d + 2);
    check((d[1] & 7) == 3 && cdb_len == 16 && t->datain.size >= 4 + cdb_len && d[4] == 0x89,
          "REPORT SUPPORTED OPERATION CODES for 89h: SUPPORT 011b (supported as in the standard), CDB SIZE 16, usage data starts 89h");
  }
  done(&t);
  return 1;
}

/* PERSISTENT RESERVE OUT with the basic parameter list; FAIL unless GOOD. */
static void pr_out(struct session *s, int sa, int type, uint64_t key, uint64_t sa_key, const char *what) {
  struct scsi_persistent_reserve_out_basic p = {.reservation_key = key, .service_action_reservation_key = sa_key};
  struct scsi_task *t = iscsi_persistent_reserve_out_sync(s->iscsi, s->lun, sa, 0, type, &p);
  check(is_good(t), "PR OUT %s: %s", what, answer(s, t));
  done(&t);
}

/* PERSISTENT RESERVE IN: its PRGENERATION (bytes 0-3) and ADDITIONAL LENGTH (4-7) and the
   first 8 bytes after them; 0 and FAIL unless GOOD with at least 8 bytes. */
struct pr_in_answer {
  uint32_t generation, length;
  uint64_t first_key;
  uint8_t scope_type;
  int size;
};

static int pr_in(struct session *s, int sa, struct pr_in_answer *a, const char *what) {
  struct scsi_task *t = iscsi_persistent_reserve_in_sync(s->iscsi, s->lun, sa, 1024);
  const uint8_t *d = data_in(s, t, 8, what);
  if (d) {
    a->size = t->datain.size;
    a->generation = be32(d);
    a->length = be32(d + 4);
    a->first_key = a->size >= 16 ? be64(d + 8) : 0;
    a->scope_type = a->size >= 22 ? d[21] : 0xFF;
  }
  done(&t);
  return d != NULL;
}

static void step_persistent_reservations(struct session *s) {
  struct pr_in_answer a = {0};
  uint32_t generation = 0;
  if (pr_in(s, SCSI_PERSISTENT_RESERVE_READ_KEYS, &a, "PR IN READ KEYS")) {
    generation = a.generation;
    check(a.length == 0 && a.size == 8, "PR IN READ KEYS on a LUN without registrations: PRGENERATION %u, ADDITIONAL LENGTH 0", generation);
  }

  struct scsi_task *t = iscsi_persistent_reserve_in_sync(s->iscsi, s->lun, SCSI_PERSISTENT_RESERVE_REPORT_CAPABILITIES, 1024);
  const uint8_t *d = data_in(s, t, 8, "PR IN REPORT CAPABILITIES");
  if (d) {
    check(be16(d) == 8 && t->datain.size == 8, "PR IN REPORT CAPABILITIES: LENGTH 8, 8 bytes sent");
    if (d[3] & 0x80) check(d[4] & 0x20, "PR IN REPORT CAPABILITIES: TMV=1 and the type mask has Write Exclusive - Registrants Only");
  }
  done(&t);

  const int we_ro = SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY;
  pr_out(s, SCSI_PERSISTENT_RESERVE_REGISTER, 0, 0, kPrKey, "REGISTER a key");
  if (pr_in(s, SCSI_PERSISTENT_RESERVE_READ_KEYS, &a, "PR IN READ KEYS after REGISTER"))
    check(a.length == 8 && a.first_key == kPrKey && a.generation > generation,
          "PR IN READ KEYS after REGISTER: ADDITIONAL LENGTH 8, key %016" PRIx64 ", PRGENERATION grew (%u -> %u)", a.first_key,
          generation, a.generation);
  pr_out(s, SCSI_PERSISTENT_RESERVE_RESERVE, we_ro, kPrKey, 0, "RESERVE, Write Exclusive - Registrants Only (type 5)");
  if (pr_in(s, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, &a, "PR IN READ RESERVATION"))
    check(a.length == 0x10 && a.first_key == kPrKey && a.scope_type == 0x05,
          "PR IN READ RESERVATION: ADDITIONAL LENGTH 10h, our key, scope LU, type 5 (got length %u, scope/type %02Xh)", a.length,
          a.scope_type);

  uint8_t block[512] = {0};
  t = iscsi_write16_sync(s->iscsi, s->lun, LBA_XCOPY_SRC - 1, block, sizeof block, sizeof block, 0, 0, 0, 0, 0);
  check(is_good(t), "a registrant writes while it holds the Write Exclusive - Registrants Only reservation: %s", answer(s, t));
  done(&t);

  pr_out(s, SCSI_PERSISTENT_RESERVE_RELEASE, we_ro, kPrKey, 0, "RELEASE");
  if (pr_in(s, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, &a, "PR IN READ RESERVATION after RELEASE"))
    check(a.length == 0, "PR IN READ RESERVATION after RELEASE: ADDITIONAL LENGTH 0 (no reservation)");
  pr_out(s, SCSI_PERSISTENT_RESERVE_REGISTER, 0, kPrKey, 0, "REGISTER with SERVICE ACTION RESERVATION KEY 0 (unregister)");
  if (pr_in(s, SCSI_PERSISTENT_RESERVE_READ_KEYS, &a, "PR IN READ KEYS after unregistering"))
    check(a.length == 0, "PR IN READ KEYS after unregistering: ADDITIONAL LENGTH 0");
}

/* SCSI-2 RESERVE(6)/RELEASE(6) (SPC-2 7.21/7.17), which ESXi sends around creating and
   mounting a datastore: while one nexus holds the reservation another gets RESERVATION
   CONFLICT for media access; after RELEASE it gets through. */
static void step_reserve6(struct session *s, const char *url) {
  struct session other = {0};
  struct scsi_task *t = iscsi_reserve6_sync(s->iscsi, s->lun);
  check(is_good(t), "RESERVE(6): %s", answer(s, t));
  done(&t);
  t = iscsi_read16_sync(s->iscsi, s->lun, LBA_MBR, 512, 512, 0, 0, 0, 0, 0);
  check(is_good(t), "the reserving nexus reads while it holds the reservation: %s", answer(s, t));
  done(&t);
  if (login(&other, url, "second nexus")) {
    RETRY_UA(t, iscsi_read16_sync(other.iscsi, other.lun, LBA_MBR, 512, 512, 0, 0, 0, 0, 0));
    check(t != NULL && t->status == SCSI_STATUS_RESERVATION_CONFLICT, "another nexus' READ(16) gets RESERVATION CONFLICT: %s",
          answer(&other, t));
    done(&t);
  }
  t = iscsi_release6_sync(s->iscsi, s->lun);
  check(is_good(t), "RELEASE(6): %s", answer(s, t));
  done(&t);
  if (other.iscsi) {
    RETRY_UA(t, iscsi_read16_sync(other.iscsi, other.lun, LBA_MBR, 512, 512, 0, 0, 0, 0, 0));
    check(is_good(t), "after RELEASE(6) the other nexus reads again: %s", answer(&other, t));
    done(&t);
    logout(&other);
  }
}

static int write_blocks(struct session *s, uint64_t lba, uint8_t *buf, uint32_t blocks, uint32_t bs) {
  for (uint32_t at = 0; at < blocks; at += 256) {
    uint32_t n = blocks - at < 256 ? blocks - at : 256;
    struct scsi_task *t = iscsi_write16_sync(s->iscsi, s->lun, lba + at, buf + (size_t)at * bs, n * bs, (int)bs, 0, 0, 0, 0, 0);
    int g = is_good(t);
    if (!g) fail("WRITE(16) of %u blocks at LBA %" PRIu64 ": %s", n, lba + at, answer(s, t));
    done(&t);
    if (!g) return 0;
  }
  return 1;
}

/* READ(16) into buf; 0 and FAIL if it did not come back GOOD and complete. */
static int read_blocks(struct session *s, uint64_t lba, uint8_t *buf, uint32_t blocks, uint32_t bs) {
  for (uint32_t at = 0; at < blocks; at += 256) {
    uint32_t n = blocks - at < 256 ? blocks - at : 256;
    struct scsi_task *t = iscsi_read16_sync(s->iscsi, s->lun, lba + at, n * bs, (int)bs, 0, 0, 0, 0, 0);
    int g = is_good(t) && t->datain.size == (int)(n * bs);
    if (g) memcpy(buf + (size_t)at * bs, t->datain.data, (size_t)n * bs);
    else fail("READ(16) of %u blocks at LBA %" PRIu64 ": %s, %d bytes", n, lba + at, answer(s, t), t ? t->datain.size : 0);
    done(&t);
    if (!g) return 0;
  }
  return 1;
}

static void step_partition_table(struct session *s, const struct lun_facts *f) {
  uint32_t bs = f->block_size;
  uint8_t *w = malloc((size_t)LVM_HEADER_BLOCKS * bs);
  /* Protective MBR (signature 55AAh) and GPT header ("EFI PART"), as partedUtil writes. */
  pattern(w, LBA_MBR, 2, bs, 0x01);
  w[510] = 0x55;
  w[511] = 0xAA;
  memcpy(w + bs, "EFI PART", 8);
  if (write_blocks(s, LBA_MBR, w, 2, bs)) {
    struct scsi_task *t = iscsi_read10_sync(s->iscsi, s->lun, LBA_MBR, bs, (int)bs, 0, 0, 0, 0, 0);
    check(is_good(t) && t->datain.size == (int)bs && memcmp(t->datain.data, w, bs) == 0,
          "READ(10) of LBA 0 returns the partition table written (MBR signature 55AAh): %s", answer(s, t));
    done(&t);
    t = iscsi_read16_sync(s->iscsi, s->lun, LBA_MBR + 1, bs, (int)bs, 0, 0, 0, 0, 0);
    check(is_good(t) && t->datain.size == (int)bs && memcmp(t->datain.data, w + bs, bs) == 0,
          "READ(16) of LBA 1 returns the GPT header written ('EFI PART'): %s", answer(s, t));
    done(&t);
  }
  pattern(w, LBA_LVM_HEADER, LVM_HEADER_BLOCKS, bs, 0x02);
  if (write_blocks(s, LBA_LVM_HEADER, w, LVM_HEADER_BLOCKS, bs)) {
    struct scsi_task *t = iscsi_read16_sync(s->iscsi, s->lun, LBA_LVM_HEADER, LVM_HEADER_BLOCKS * bs, (int)bs, 0, 0, 0, 0, 0);
    check(is_good(t) && t->datain.size == (int)(LVM_HEADER_BLOCKS * bs) && memcmp(t->datain.data, w, LVM_HEADER_BLOCKS * bs) == 0,
          "READ(16) of the VMFS LVM header (%d blocks at LBA %d) returns what was written: %s", LVM_HEADER_BLOCKS, LBA_LVM_HEADER,
          answer(s, t));
    done(&t);
  }
  free(w);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One ATS: compare `old`, write `new`. */
static struct scsi_task *ats(struct session *s, uint64_t lba, const uint8_t *old, const uint8_t *new_image, uint32_t bs) {
  uint8_t *buf = malloc(2 * (size_t)bs);
  memcpy(buf, old, bs);
  memcpy(buf + bs, new_image, bs);
  struct scsi_task *t = iscsi_compareandwrite_sync(s->iscsi, s->lun, lba, buf, 2 * bs, (int)bs, 0, 0, 0, 0, 0);
  free(buf);
  return t;
}

/* A stale ATS must miscompare: CHECK CONDITION 0E/1D/00, VALID=1, INFORMATION = offset of the
   first byte of the compare data that differs from the medium; and it must not write. */
static void stale_ats(struct session *s, uint64_t lba, const uint8_t *stale, const uint8_t *current, uint32_t bs,
                      const char *label) {
  uint32_t expect = 0;
  while (expect < bs && stale[expect] == current[expect]) expect++;
  uint8_t *other = malloc(bs);
  heartbeat_image(other, bs, 0xDEADull);
  struct scsi_task *t = ats(s, lba, stale, other, bs);
  struct sense k = sense_of(t);
  check(is_sense(t, 0x0E, 0x1D, 0x00), "%s: ATS with a stale compare image gets MISCOMPARE 0E/1D/00 (MISCOMPARE DURING VERIFY OPERATION): %s",
        label, answer(s, t));
  if (!is_sense(t, 0x0E, 0x1D, 0x00)) {
    /* no miscompare: nothing to read INFORMATION from */
  } else if (k.raw && k.raw_len >= 18) {
    uint32_t info = be32(k.raw + 3);
    check((k.raw[0] & 0x7F) == 0x70 && (k.raw[0] & 0x80) && info == expect,
          "%s: the miscompare sense is fixed format with VALID=1 and INFORMATION %u = offset of the first differing byte (%u)", label, info,
          expect);
  } else {
    fail("%s: the miscompare sense has no INFORMATION field (%d bytes)", label, k.raw_len);
  }
  done(&t);
  uint8_t *now_there = malloc(bs);
  if (read_blocks(s, lba, now_there, 1, bs))
    check(memcmp(now_there, current, bs) == 0, "%s: the miscompared ATS wrote nothing: the slot still holds the current image", label);
  free(now_there);
  free(other);
}

/* The heartbeat loop: read the slot, then `count` ATS each comparing the previous image. Leaves
   the last image in `last` (and the one before in `before`). Returns the last generation. */
static uint64_t heartbeat_loop(struct session *s, uint32_t bs, uint64_t generation, uint8_t *last, uint8_t *before, int count,
                               const char *label) {
  uint8_t *next = malloc(bs);
  double worst = 0, total = 0;
  int good_ones = 0;
  for (int i = 0; i < count; i++) {
    heartbeat_image(next, bs, generation + 1);
    double t0 = now();
    struct scsi_task *t = ats(s, LBA_HEARTBEAT, last, next, bs);
    double took = now() - t0;
    if (!is_good(t)) {
      fail("%s: heartbeat ATS %d (generation %" PRIu64 " -> %" PRIu64 "): %s", label, i + 1, generation, generation + 1, answer(s, t));
      done(&t);
      break;
    }
    done(&t);
    good_ones++;
    total += took;
    if (took > worst) worst = took;
    memcpy(before, last, bs);
    memcpy(last, next, bs);
    generation++;
  }
  if (good_ones == count) {
    check(1, "%s: %d heartbeat ATS (COMPARE AND WRITE of LBA %d, old image -> new image) all GOOD, generation now %" PRIu64, label, count,
          LBA_HEARTBEAT, generation);
    check(worst < kAtsTimeoutSeconds, "%s: slowest ATS took %.1f ms, mean %.1f ms (ESXi gives a heartbeat %.0f s)", label, worst * 1e3,
          total / count * 1e3, kAtsTimeoutSeconds);
  }
  if (read_blocks(s, LBA_HEARTBEAT, next, 1, bs))
    check(memcmp(next, last, bs) == 0, "%s: READ(16) of the heartbeat slot returns the last image written", label);
  free(next);
  return generation;
}

static void step_heartbeat(struct session *s, const struct lun_facts *f, int count, const char *save_path) {
  uint32_t bs = f->block_size;
  uint8_t *last = malloc(bs), *before = malloc(bs);
  /* ESXi reads the slot, then claims it with an ATS that compares what it read. */
  if (!read_blocks(s, LBA_HEARTBEAT, last, 1, bs)) return;
  uint64_t generation = memcmp(last, "VMFS-HB-SLOT", 12) == 0 ? be64(last + HB_GEN_OFFSET) : 0;
  memcpy(before, last, bs);
  generation = heartbeat_loop(s, bs, generation, last, before, count, "ATS heartbeat");
  if (count > 0) stale_ats(s, LBA_HEARTBEAT, before, last, bs, "ATS heartbeat");
  if (save_path) {
    FILE *fp = fopen(save_path, "wb");
    int saved = fp && fwrite(last, 1, bs, fp) == bs;
    if (fp) saved = fclose(fp) == 0 && saved;
    if (!saved) fail("cannot save the last heartbeat image to %s: %s", save_path, strerror(errno));
  }
  free(last);
  free(before);
}

/* GET LBA STATUS at `lba`: the first descriptor must start there, cover `blocks` and have
   provisioning status `want` (0 mapped, 1 deallocated). */
static void lba_status(struct session *s, uint64_t lba, uint32_t blocks, int want, const char *label) {
  struct scsi_task *t;
  RETRY_UA(t, iscsi_get_lba_status_sync(s->iscsi, s->lun, lba, 1024));
  const uint8_t *d = data_in(s, t, 8, "GET LBA STATUS");
  if (d) {
    uint32_t len = be32(d);
    int layout = len >= 4 && (len - 4) % 16 == 0 && (int)(4 + len) == t->datain.size && t->datain.size >= 24;
    if (!layout) {
      fail("%s: GET LBA STATUS: PARAMETER DATA LENGTH %u for %d bytes, no whole descriptor", label, len, t->datain.size);
    } else {
      uint64_t start = be64(d + 8);
      uint32_t count = be32(d + 16);
      int status = d[20] & 0x0F;
      check(start == lba && count >= blocks && status == want,
            "%s: GET LBA STATUS at LBA %" PRIu64 ": %u blocks %s (expected at least %u %s)", label, lba, count,
            status == 0 ? "mapped" : status == 1 ? "deallocated" : status == 2 ? "anchored" : "of unknown status", blocks,
            want == 0 ? "mapped" : "deallocated");
    }
  }
  done(&t);
}

static void expect_zeroes(struct session *s, uint64_t lba, uint32_t blocks, uint32_t bs, const char *label) {
  uint8_t *buf = malloc((size_t)blocks * bs);
  if (read_blocks(s, lba, buf, blocks, bs))
    check(all_zero(buf, (size_t)blocks * bs), "%s: %u blocks at LBA %" PRIu64 " read as zeroes", label, blocks, lba);
  free(buf);
}

static void step_zero_and_reclaim(struct session *s, const struct lun_facts *f) {
  uint32_t bs = f->block_size;
  uint8_t *buf = malloc((size_t)RANGE_BLOCKS * bs), *zero = calloc(1, bs);

  /* Eager zeroing: WRITE SAME(16) of a zero block, UNMAP=0, over data. */
  pattern(buf, LBA_ZERO, RANGE_BLOCKS, bs, 0x03);
  if (write_blocks(s, LBA_ZERO, buf, RANGE_BLOCKS, bs)) {
    struct scsi_task *t = iscsi_writesame16_sync(s->iscsi, s->lun, LBA_ZERO, zero, bs, RANGE_BLOCKS, 0, 0, 0, 0);
    check(is_good(t), "WRITE SAME(16) of a zero block over 1 MiB of data (eager zeroing, VAAI Zero): %s", answer(s, t));
    done(&t);
    expect_zeroes(s, LBA_ZERO, RANGE_BLOCKS, bs, "after WRITE SAME(16)");
  }

  /* WRITE SAME(16) with UNMAP=1 over data: zeroes, deallocated. */
  pattern(buf, LBA_WS_UNMAP, RANGE_BLOCKS, bs, 0x04);
  if (write_blocks(s, LBA_WS_UNMAP, buf, RANGE_BLOCKS, bs)) {
    lba_status(s, LBA_WS_UNMAP, RANGE_BLOCKS, 0, "written range");
    struct scsi_task *t = iscsi_writesame16_sync(s->iscsi, s->lun, LBA_WS_UNMAP, zero, bs, RANGE_BLOCKS, 0, 1, 0, 0);
    check(is_good(t), "WRITE SAME(16) with UNMAP=1 of 1 MiB: %s", answer(s, t));
    done(&t);
    lba_status(s, LBA_WS_UNMAP, RANGE_BLOCKS, 1, "after WRITE SAME(16) UNMAP");
    expect_zeroes(s, LBA_WS_UNMAP, RANGE_BLOCKS, bs, "after WRITE SAME(16) UNMAP");
  }

  /* VMFS6 space reclamation: UNMAP of one 1 MiB block. */
  pattern(buf, LBA_UNMAP, RANGE_BLOCKS, bs, 0x05);
  if (write_blocks(s, LBA_UNMAP, buf, RANGE_BLOCKS, bs)) {
    lba_status(s, LBA_UNMAP, RANGE_BLOCKS, 0, "written range");
    struct unmap_list list = {.lba = LBA_UNMAP, .num = RANGE_BLOCKS};
    struct scsi_task *t = iscsi_unmap_sync(s->iscsi, s->lun, 0, 0, &list, 1);
    check(is_good(t), "UNMAP of 1 MiB at LBA %d (VMFS6 space reclamation): %s", LBA_UNMAP, answer(s, t));
    done(&t);
    lba_status(s, LBA_UNMAP, RANGE_BLOCKS, 1, "after UNMAP");
    expect_zeroes(s, LBA_UNMAP, RANGE_BLOCKS, bs, "after UNMAP");
  }
  free(buf);
  free(zero);
}

/* EXTENDED COPY (LID1) within the LUN: two E4h CSCD descriptors naming it by its NAA, one
   block-to-block segment. */
static void step_xcopy(struct session *s, const struct lun_facts *f) {
  uint32_t bs = f->block_size;
  check(f->threepc, "standard INQUIRY: 3PC=1 (third-party copy: ESXi's Clone primitive)");
  check(f->op_xcopy && f->op_rcr, "REPORT SUPPORTED OPERATION CODES lists EXTENDED COPY (83h/00h) and RECEIVE COPY RESULTS operating parameters (84h/03h)");

  struct scsi_task *t = receive_copy_operating_parameters(s, 1024);
  const uint8_t *d = data_in(s, t, 44, "RECEIVE COPY RESULTS, operating parameters");
  if (d) {
    uint32_t avail = be32(d);
    int list_len = d[43], has_b2b = 0, has_e4 = 0;
    for (int i = 0; i < list_len && 44 + i < t->datain.size; i++) {
      if (d[44 + i] == 0x02) has_b2b = 1;
      if (d[44 + i] == 0xE4) has_e4 = 1;
    }
    check(avail == (uint32_t)(40 + list_len) && t->datain.size == 44 + list_len,
          "RECEIVE COPY RESULTS operating parameters: AVAILABLE DATA %u = 40 + %d implemented descriptor codes, all sent", avail, list_len);
    check(be16(d + 8) >= 2 && be16(d + 10) >= 1, "RECEIVE COPY RESULTS: MAXIMUM CSCD DESCRIPTOR COUNT %u >= 2, MAXIMUM SEGMENT DESCRIPTOR COUNT %u >= 1",
          be16(d + 8), be16(d + 10));
    check(be32(d + 12) >= 16 + 64 + 28, "RECEIVE COPY RESULTS: MAXIMUM DESCRIPTOR LIST LENGTH %u fits two CSCDs and a segment", be32(d + 12));
    check(be32(d + 16) >= XCOPY_BLOCKS * bs, "RECEIVE COPY RESULTS: MAXIMUM SEGMENT LENGTH %u bytes >= %u", be32(d + 16), XCOPY_BLOCKS * bs);
    check(has_b2b && has_e4, "RECEIVE COPY RESULTS: implemented descriptors include 02h (block to block) and E4h (identification CSCD)");
    struct scsi_copy_results_op_params *op = scsi_datain_unmarshall(t);
    check(op != NULL && op->max_target_desc_count == be16(d + 8) && op->max_segment_length == be32(d + 16) &&
              op->impl_desc_list_length == list_len,
          "RECEIVE COPY RESULTS as libiscsi decodes it: the same counts, segment length and descriptor list");
  }
  done(&t);

  uint8_t *src = malloc((size_t)XCOPY_BLOCKS * bs), *got = malloc((size_t)XCOPY_BLOCKS * bs);
  uint8_t *zero = calloc(XCOPY_BLOCKS, bs);
  pattern(src, LBA_XCOPY_SRC, XCOPY_BLOCKS, bs, 0x06);
  if (write_blocks(s, LBA_XCOPY_SRC, src, XCOPY_BLOCKS, bs) && write_blocks(s, LBA_XCOPY_DST, zero, XCOPY_BLOCKS, bs)) {
    uint8_t p[16 + 64 + 28] = {0};
    p[0] = 0;            /* LIST IDENTIFIER */
    p[1] = 3 << 3;       /* LIST ID USAGE 11b: no list identifier, nothing held */
    put16(p + 2, 64);    /* CSCD DESCRIPTOR LIST LENGTH */
    put32(p + 8, 28);    /* SEGMENT DESCRIPTOR LIST LENGTH */
    for (int i = 0; i < 2; i++) { /* identification descriptor CSCD (SPC-4 6.4.5.7) */
      uint8_t *c = p + 16 + 32 * i;
      c[0] = 0xE4;
      c[1] = 0x00;       /* LU ID TYPE 00b (LUN field), NUL 0, peripheral device type 0 */
      c[4] = 0x01;       /* CODE SET binary */
      c[5] = 0x03;       /* ASSOCIATION logical unit, DESIGNATOR TYPE NAA */
      c[7] = 16;
      memcpy(c + 8, f->naa, 16);
      c[29] = (uint8_t)(bs >> 16); /* block device parameters: DISK BLOCK LENGTH */
      c[30] = (uint8_t)(bs >> 8);
      c[31] = (uint8_t)bs;
    }
    uint8_t *g = p + 16 + 64; /* block device to block device segment (SPC-4 6.4.6.5) */
    g[0] = 0x02;
    g[1] = 0x00;               /* DC=0: NUMBER OF BLOCKS counts destination blocks; CAT=0 */
    put16(g + 2, 0x18);        /* DESCRIPTOR LENGTH */
    put16(g + 4, 0);           /* SOURCE CSCD DESCRIPTOR ID */
    put16(g + 6, 1);           /* DESTINATION CSCD DESCRIPTOR ID */
    put16(g + 10, XCOPY_BLOCKS);
    put64(g + 12, LBA_XCOPY_SRC);
    put64(g + 20, LBA_XCOPY_DST);
    struct iscsi_data data = {.size = sizeof p, .data = p};
    t = iscsi_extended_copy_sync(s->iscsi, s->lun, &data);
    check(is_good(t), "EXTENDED COPY (LID1): %d blocks LBA %d -> %d, both CSCDs E4h with %s: %s", XCOPY_BLOCKS, LBA_XCOPY_SRC,
          LBA_XCOPY_DST, f->naa_name, answer(s, t));
    done(&t);
    if (read_blocks(s, LBA_XCOPY_DST, got, XCOPY_BLOCKS, bs))
      check(memcmp(got, src, (size_t)XCOPY_BLOCKS * bs) == 0, "READ(16) of the copy's destination returns the source blocks");
    if (read_blocks(s, LBA_XCOPY_SRC, got, XCOPY_BLOCKS, bs))
      check(memcmp(got, src, (size_t)XCOPY_BLOCKS * bs) == 0, "the copy's source is unchanged");
  }
  free(src);
  free(got);
  free(zero);
}

static void step_synchronize_cache(struct session *s) {
  struct scsi_task *t = iscsi_synchronizecache10_sync(s->iscsi, s->lun, 0, 0, 0, 0);
  check(is_good(t), "SYNCHRONIZE CACHE(10) of the whole LUN: %s", answer(s, t));
  done(&t);
  t = iscsi_synchronizecache16_sync(s->iscsi, s->lun, LBA_HEARTBEAT, 1, 0, 0);
  check(is_good(t), "SYNCHRONIZE CACHE(16) of the heartbeat slot: %s", answer(s, t));
  done(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Modes */

struct options {
  const char *url;
  const char *mode;
  const char *expect_naa;
  const char *save_ats;
  const char *ats_image;
  uint64_t size_bytes;
  int skip_pr, skip_xcopy, skip_reserve6;
  int ats_count;
};

static int naa_matches(const struct lun_facts *f, const char *expect, const char *label) {
  if (expect == NULL) return 1;
  const char *want = strncmp(expect, "naa.", 4) == 0 ? expect : NULL;
  char buf[64];
  if (want == NULL) {
    snprintf(buf, sizeof buf, "naa.%s", expect);
    want = buf;
  }
  char lower[64];
  size_t i = 0;
  for (; want[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)want[i]);
  lower[i] = 0;
  return check(strcmp(f->naa_name, lower) == 0, "%s: the NAA is %s, the same as before (%s)", label, f->naa_name, lower);
}

/* A reservation left in place for the takeover: registered through every target port
   (ALL_TG_PT) and through power loss (APTPL), Write Exclusive - Registrants Only. The node that
   takes over, or the same node after a restart, must hold the same state. */
static const uint64_t kPrHeldKey = 0x45535869F5A000F0ull;
static struct scsi_task *test_unit_ready_past_attentions(struct session *s, int *attentions);
static const char *other_initiator = "iqn.1998-01.com.vmware:esxi-replay-other-host";

static void step_hold_reservation(const char *url) {
  struct session h = {0};
  if (!login_as(&h, url, "reservation holder", initiator_name, 1)) return;
  int attentions;
  struct scsi_task *t = test_unit_ready_past_attentions(&h, &attentions);
  done(&t);
  struct scsi_persistent_reserve_out_basic p = {.service_action_reservation_key = kPrHeldKey, .all_tg_pt = 1, .aptpl = 1};
  t = iscsi_persistent_reserve_out_sync(h.iscsi, h.lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, &p);
  check(is_good(t), "PR OUT REGISTER AND IGNORE EXISTING KEY with ALL_TG_PT and APTPL, for the takeover: %s", answer(&h, t));
  done(&t);
  pr_out(&h, SCSI_PERSISTENT_RESERVE_RESERVE, SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY, kPrHeldKey, 0,
         "RESERVE type 5, held for the takeover");
  logout(&h);
}

/* After a takeover or restart: the registration and the reservation are there, the holder
   writes through this node's port, another host only reads. */
static void step_reservation_survived(const char *url, const char *label) {
  struct session h = {0}, other = {0};
  struct pr_in_answer a = {0};
  if (!login_as(&h, url, "reservation holder", initiator_name, 1)) return;
  int attentions;
  struct scsi_task *t = test_unit_ready_past_attentions(&h, &attentions);
  done(&t);
  if (pr_in(&h, SCSI_PERSISTENT_RESERVE_READ_KEYS, &a, "PR IN READ KEYS"))
    check(a.length >= 8 && a.first_key == kPrHeldKey, "%s: READ KEYS shows the key registered before (%016" PRIx64 ", length %u)",
          label, a.first_key, a.length);
  if (pr_in(&h, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, &a, "PR IN READ RESERVATION"))
    check(a.length == 0x10 && a.first_key == kPrHeldKey && a.scope_type == 0x05,
          "%s: READ RESERVATION shows the same Write Exclusive - Registrants Only reservation (length %u, type %02Xh)", label,
          a.length, a.scope_type);
  uint8_t block[512];
  memset(block, 0xE5, sizeof block);
  t = iscsi_write16_sync(h.iscsi, h.lun, LBA_XCOPY_SRC - 1, block, sizeof block, sizeof block, 0, 0, 0, 0, 0);
  check(is_good(t), "%s: the registrant writes through this node's target port (ALL_TG_PT): %s", label, answer(&h, t));
  done(&t);
  if (login_as(&other, url, "another host", other_initiator, 0)) {
    t = test_unit_ready_past_attentions(&other, &attentions);
    done(&t);
    t = iscsi_write16_sync(other.iscsi, other.lun, LBA_XCOPY_SRC - 1, block, sizeof block, sizeof block, 0, 0, 0, 0, 0);
    check(t != NULL && t->status == SCSI_STATUS_RESERVATION_CONFLICT,
          "%s: an unregistered host's WRITE gets RESERVATION CONFLICT: %s", label, answer(&other, t));
    done(&t);
    t = iscsi_read16_sync(other.iscsi, other.lun, LBA_XCOPY_SRC - 1, sizeof block, sizeof block, 0, 0, 0, 0, 0);
    check(is_good(t), "%s: an unregistered host still reads (Write Exclusive): %s", label, answer(&other, t));
    done(&t);
    logout(&other);
  }
  logout(&h);
}

/* Whether READ KEYS lists `key`. */
static int lists_key(struct session *s, uint64_t key, const char *what) {
  struct scsi_task *t = iscsi_persistent_reserve_in_sync(s->iscsi, s->lun, SCSI_PERSISTENT_RESERVE_READ_KEYS, 4096);
  const uint8_t *d = data_in(s, t, 8, what);
  int found = 0;
  if (d) {
    const uint32_t length = be32(d + 4);
    for (uint32_t at = 8; at + 8 <= 8 + length && at + 8 <= (uint32_t)t->datain.size; at += 8) found |= be64(d + at) == key;
  }
  done(&t);
  return found;
}

/* SPC-4 5.15.2.4.4: a standby port takes PERSISTENT RESERVE IN and OUT. A host (Windows
   clusters do) registers through every path, standby ones too: the registration is made on
   the primary and is visible through both paths. */
static void step_standby_registration(struct session *s) {
  const uint64_t key = 0x45535869F5A000B0ull;
  struct scsi_persistent_reserve_out_basic p = {.service_action_reservation_key = key};
  struct scsi_task *t =
      iscsi_persistent_reserve_out_sync(s->iscsi, s->lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, &p);
  check(is_good(t), "standby path: PR OUT REGISTER AND IGNORE EXISTING KEY through the standby port: %s", answer(s, t));
  done(&t);
  check(lists_key(s, key, "standby path: PR IN READ KEYS"), "standby path: READ KEYS lists the key registered through it");
  p.service_action_reservation_key = 0;
  t = iscsi_persistent_reserve_out_sync(s->iscsi, s->lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, &p);
  check(is_good(t), "standby path: unregistering through the standby port: %s", answer(s, t));
  done(&t);
  check(!lists_key(s, key, "standby path: PR IN READ KEYS"), "standby path: READ KEYS no longer lists it");
}

static void mode_claim(const struct options *o) {
  struct session s = {0};
  struct lun_facts f = {0};
  if (!login(&s, o->url, "session 1")) return;
  ok("login (session 1) to %s", o->url);
  step_report_luns(&s);
  step_standard_inquiry(&s, &f);
  step_vpd_pages(&s, &f, !o->skip_xcopy);
  naa_matches(&f, o->expect_naa, "claim");
  step_test_unit_ready(&s);
  step_read_capacity(&s, &f, o->size_bytes);
  if (f.block_size == 0 || f.blocks < MIN_LUN_BLOCKS) {
    fail("the LUN is too small for the replay (%" PRIu64 " blocks of %u, at least %d blocks of 512 needed)", f.blocks, f.block_size,
         MIN_LUN_BLOCKS);
    logout(&s);
    return;
  }
  if (f.block_size != 512) {
    fail("the replay's LBA layout is for 512-byte blocks; the LUN has %u", f.block_size);
    logout(&s);
    return;
  }
  step_mode_sense(&s, &f);
  step_alua(&s, &f);
  read_opcodes(&s, &f, 0);
  if (o->skip_pr)
    skip("PERSISTENT RESERVE IN/OUT (READ KEYS, REPORT CAPABILITIES, REGISTER, RESERVE type 5, RELEASE, unregister): --skip-pr");
  else
    step_persistent_reservations(&s);
  step_partition_table(&s, &f);
  if (o->skip_reserve6)
    skip("RESERVE(6)/RELEASE(6) around datastore creation (a second nexus gets RESERVATION CONFLICT): --skip-reserve6");
  else
    step_reserve6(&s, o->url);
  step_heartbeat(&s, &f, o->ats_count, o->save_ats);
  step_zero_and_reclaim(&s, &f);
  if (o->skip_xcopy)
    skip("EXTENDED COPY / RECEIVE COPY RESULTS / VPD 8Fh / 3PC (VAAI Clone): --skip-xcopy");
  else
    step_xcopy(&s, &f);
  step_synchronize_cache(&s);
  if (!o->skip_pr) step_hold_reservation(o->url);

  /* A second session (another I_T nexus, as a second ESXi host or path) sees the same device. */
  struct session s2 = {0};
  struct lun_facts f2 = {0};
  if (login(&s2, o->url, "session 2")) {
    int named = read_device_identification(&s2, &f2, 1);
    check(named && memcmp(f2.naa, f.naa, 16) == 0 && f2.tpg == f.tpg, "a second session gets the same NAA %s and target port group %u",
          named ? f2.naa_name : "(none)", f2.tpg);
    logout(&s2);
  }
  logout(&s);
  if (f.naa_name[0]) printf("naa=%s\n", f.naa_name);
}

static void mode_probe(const struct options *o) {
  struct session s = {0};
  struct lun_facts f = {0};
  if (!login(&s, o->url, "probe")) return;
  if (read_opcodes(&s, &f, 1))
    printf("pr=%d xcopy=%d reserve6=%d\n", f.op_pr_in && f.op_pr_out, f.op_xcopy && f.op_rcr, f.op_reserve6);
  logout(&s);
}

static void mode_identity(const struct options *o) {
  struct session s = {0};
  struct lun_facts f = {0};
  if (!login(&s, o->url, "identity")) return;
  if (read_device_identification(&s, &f, 1)) {
    naa_matches(&f, o->expect_naa, "identity");
    printf("naa=%s tpg=%u\n", f.naa_name, f.tpg);
  } else {
    fail("identity: no NAA 6 designator and target port group in VPD 83h");
  }
  logout(&s);
}

/* TEST UNIT READY as ESXi's path checker sends it: again while it reports unit attentions (a
   new nexus, a changed ALUA state), at most 4 of them. */
static struct scsi_task *test_unit_ready_past_attentions(struct session *s, int *attentions) {
  struct scsi_task *t = iscsi_testunitready_sync(s->iscsi, s->lun);
  for (*attentions = 0; is_ua(t) && *attentions < 4; (*attentions)++) {
    done(&t);
    t = iscsi_testunitready_sync(s->iscsi, s->lun);
  }
  return t;
}

/* A refused media command on a standby path: 02/04/0B, never 05/25/00 (ESXi's PDL). */
static void expect_standby(struct session *s, struct scsi_task *t, const char *what) {
  if (is_sense(t, 0x05, 0x25, 0x00))
    fail("standby path: %s answered 05/25/00 LOGICAL UNIT NOT SUPPORTED - ESXi would declare the device permanently lost", what);
  else
    check(is_sense(t, 0x02, 0x04, 0x0B), "standby path: %s refused with NOT READY 02/04/0B (target port in standby state): %s", what,
          answer(s, t));
}

static void mode_standby(const struct options *o) {
  struct session s = {0};
  struct lun_facts f = {0};
  if (!login(&s, o->url, "standby")) return;
  ok("login to the standby path %s", o->url);
  step_report_luns(&s);
  struct scsi_task *t = iscsi_inquiry_sync(s.iscsi, s.lun, 0, 0, 96);
  const uint8_t *d = data_in(&s, t, 36, "standby path: standard INQUIRY");
  if (d) check(d[0] == 0x00 && ((d[5] >> 4) & 3) != 0, "standby path: standard INQUIRY: direct access device present (PQ 0), TPGS=%d", (d[5] >> 4) & 3);
  done(&t);
  if (check(read_device_identification(&s, &f, 0), "standby path: VPD 83h names the device and its port group"))
    naa_matches(&f, o->expect_naa, "standby path");

  /* ESXi's path state check: TEST UNIT READY; first the unit attention of the new nexus. */
  int attentions;
  t = test_unit_ready_past_attentions(&s, &attentions);
  expect_standby(&s, t, "TEST UNIT READY");
  done(&t);

  struct rtpg_result r = rtpg(&s, &f, 0, "standby path");
  check(r.found && r.state == 0x2, "standby path: RTPG shows its own group %u %s (standby expected)", f.tpg, alua_state_name(r.state));
  check(r.ao_groups == 1 && r.count >= 2, "standby path: RTPG shows another group active/optimized (%d of %d groups AO)", r.ao_groups, r.count);
  r = rtpg(&s, &f, 1, "standby path");
  check(r.found && r.state == 0x2, "standby path: RTPG (extended header) agrees: group %u %s", f.tpg, alua_state_name(r.state));

  t = iscsi_modesense6_sync(s.iscsi, s.lun, 1, SCSI_MODESENSE_PC_CURRENT, 0x3F, 0, 255);
  check(is_good(t), "standby path: MODE SENSE(6) answers (SPC-4 allows it in standby): %s", answer(&s, t));
  done(&t);
  t = iscsi_report_supported_opcodes_sync(s.iscsi, s.lun, 0, SCSI_REPORT_SUPPORTING_OPS_ALL, 0, 0, 65535);
  check(is_good(t), "standby path: REPORT SUPPORTED OPERATION CODES answers: %s", answer(&s, t));
  done(&t);

  uint8_t *buf = calloc(2, 512);
  t = iscsi_readcapacity16_sync(s.iscsi, s.lun);
  expect_standby(&s, t, "READ CAPACITY(16)");
  done(&t);
  t = iscsi_read10_sync(s.iscsi, s.lun, LBA_MBR, 512, 512, 0, 0, 0, 0, 0);
  expect_standby(&s, t, "READ(10) of the partition table");
  done(&t);
  t = iscsi_read16_sync(s.iscsi, s.lun, LBA_HEARTBEAT, 512, 512, 0, 0, 0, 0, 0);
  expect_standby(&s, t, "READ(16) of the heartbeat slot");
  done(&t);
  t = iscsi_write16_sync(s.iscsi, s.lun, LBA_XCOPY_SRC - 1, buf, 512, 512, 0, 0, 0, 0, 0);
  expect_standby(&s, t, "WRITE(16)");
  done(&t);
  t = iscsi_compareandwrite_sync(s.iscsi, s.lun, LBA_HEARTBEAT, buf, 1024, 512, 0, 0, 0, 0, 0);
  expect_standby(&s, t, "COMPARE AND WRITE (ATS)");
  done(&t);
  t = iscsi_writesame16_sync(s.iscsi, s.lun, LBA_ZERO, buf, 512, 8, 0, 0, 0, 0);
  expect_standby(&s, t, "WRITE SAME(16)");
  done(&t);
  struct unmap_list list = {.lba = LBA_UNMAP, .num = 8};
  t = iscsi_unmap_sync(s.iscsi, s.lun, 0, 0, &list, 1);
  expect_standby(&s, t, "UNMAP");
  done(&t);
  t = iscsi_synchronizecache10_sync(s.iscsi, s.lun, 0, 0, 0, 0);
  expect_standby(&s, t, "SYNCHRONIZE CACHE(10)");
  done(&t);
  free(buf);
  if (o->skip_pr)
    skip("standby path: PERSISTENT RESERVE OUT through the standby port (--skip-pr)");
  else
    step_standby_registration(&s);
  logout(&s);
}

static void mode_takeover(const struct options *o) {
  struct session s = {0};
  struct lun_facts f = {0};
  uint32_t bs = 512;
  uint8_t *image = malloc(bs), *before = malloc(bs), *got = malloc((size_t)XCOPY_BLOCKS * bs);
  FILE *fp = o->ats_image ? fopen(o->ats_image, "rb") : NULL;
  int have_image = fp && fread(image, 1, bs, fp) == bs;
  if (fp) fclose(fp);
  if (!have_image) {
    fail("takeover: cannot read the last heartbeat image from %s", o->ats_image ? o->ats_image : "(no --ats-image)");
    return;
  }
  /* The host that held the reservation: the heartbeat writes as its registrant. */
  if (!login_as(&s, o->url, "takeover", initiator_name, 1)) return;
  ok("login to the new primary %s", o->url);
  if (check(read_device_identification(&s, &f, 1), "new primary: VPD 83h has an NAA 6 designator and a target port group"))
    naa_matches(&f, o->expect_naa, "new primary");

  int attentions;
  struct scsi_task *t = test_unit_ready_past_attentions(&s, &attentions);
  check(is_good(t), "new primary: TEST UNIT READY GOOD after %d unit attention(s): %s", attentions, answer(&s, t));
  done(&t);

  struct rtpg_result r = rtpg(&s, &f, 0, "new primary");
  check(r.found && r.state == 0, "new primary: RTPG shows its own group %u %s (active/optimized expected)", f.tpg, alua_state_name(r.state));
  check(r.ao_groups == 1 && r.standby_groups == r.count - 1,
        "new primary: exactly one group active/optimized, the other %d standby (%d AO, %d standby)", r.count - 1, r.ao_groups,
        r.standby_groups);

  if (read_blocks(&s, LBA_HEARTBEAT, before, 1, bs))
    check(memcmp(before, image, bs) == 0, "new primary: the heartbeat slot holds the last image the old primary wrote (generation %" PRIu64 ")",
          be64(image + HB_GEN_OFFSET));
  /* The first heartbeat through the new path compares the image the old one wrote last. */
  uint64_t generation = be64(image + HB_GEN_OFFSET);
  heartbeat_image(before, bs, generation + 1);
  t = ats(&s, LBA_HEARTBEAT, image, before, bs);
  check(is_good(t), "new primary: ATS with the old primary's last image (generation %" PRIu64 ") as compare data: %s", generation,
        answer(&s, t));
  done(&t);
  uint8_t *swap = image;
  image = before;
  before = swap;
  generation++;
  heartbeat_loop(&s, bs, generation, image, before, o->ats_count, "new primary: ATS heartbeat");
  stale_ats(&s, LBA_HEARTBEAT, before, image, bs, "new primary");
  if (o->save_ats) {
    fp = fopen(o->save_ats, "wb");
    if (!fp || fwrite(image, 1, bs, fp) != bs || fclose(fp) != 0) fail("cannot save the heartbeat image to %s", o->save_ats);
  }

  expect_zeroes(&s, LBA_UNMAP, RANGE_BLOCKS, bs, "new primary: the range the old primary unmapped");
  lba_status(&s, LBA_UNMAP, RANGE_BLOCKS, 1, "new primary: the range the old primary unmapped");
  expect_zeroes(&s, LBA_ZERO, RANGE_BLOCKS, bs, "new primary: the range the old primary zeroed with WRITE SAME");
  uint8_t *mbr = malloc(2 * bs);
  pattern(mbr, LBA_MBR, 2, bs, 0x01);
  mbr[510] = 0x55;
  mbr[511] = 0xAA;
  memcpy(mbr + bs, "EFI PART", 8);
  uint8_t *read_mbr = malloc(2 * bs);
  if (read_blocks(&s, LBA_MBR, read_mbr, 2, bs))
    check(memcmp(read_mbr, mbr, 2 * bs) == 0, "new primary: the partition table the old primary wrote is there");
  free(mbr);
  free(read_mbr);
  if (o->skip_xcopy) {
    skip("new primary: the blocks EXTENDED COPY wrote (--skip-xcopy)");
  } else {
    uint8_t *src = malloc((size_t)XCOPY_BLOCKS * bs);
    pattern(src, LBA_XCOPY_SRC, XCOPY_BLOCKS, bs, 0x06);
    if (read_blocks(&s, LBA_XCOPY_DST, got, XCOPY_BLOCKS, bs))
      check(memcmp(got, src, (size_t)XCOPY_BLOCKS * bs) == 0, "new primary: the blocks EXTENDED COPY wrote on the old primary are there");
    free(src);
  }
  step_synchronize_cache(&s);
  logout(&s);
  if (o->skip_pr)
    skip("new primary: the persistent reservation held before (--skip-pr)");
  else
    step_reservation_survived(o->url, "new primary");
  free(image);
  free(before);
  free(got);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: esxi_replay [options] iscsi://HOST[:PORT]/IQN/LUN\n"
          "  --mode claim|probe|identity|standby|takeover   (default claim; see the top of esxi_replay.c)\n"
          "  --initiator IQN       initiator name (default %s)\n"
          "  --skip-pr             leave out the PERSISTENT RESERVE IN/OUT steps (printed as skip)\n"
          "  --skip-xcopy          leave out EXTENDED COPY, RECEIVE COPY RESULTS, VPD 8Fh and 3PC\n"
          "  --skip-reserve6       leave out RESERVE(6)/RELEASE(6)\n"
          "  --expect-naa NAA      the NAA designator must be this (naa.6... or the hex digits)\n"
          "  --size-bytes N        READ CAPACITY must report this many bytes\n"
          "  --ats-count N         heartbeat ATS per loop (default 25)\n"
          "  --save-ats FILE       write the last heartbeat image to FILE\n"
          "  --ats-image FILE      takeover: the last heartbeat image the old primary wrote\n"
          "  --verbose             libiscsi's debug output on stderr\n",
          initiator_name);
}

int main(int argc, char **argv) {
  struct options o = {.mode = "claim", .ats_count = 25};
  static const struct option longopts[] = {
      {"mode", required_argument, 0, 'm'},       {"initiator", required_argument, 0, 'i'},
      {"skip-pr", no_argument, 0, 'P'},          {"skip-xcopy", no_argument, 0, 'X'},
      {"skip-reserve6", no_argument, 0, 'R'},
      {"expect-naa", required_argument, 0, 'n'}, {"size-bytes", required_argument, 0, 's'},
      {"ats-count", required_argument, 0, 'c'},  {"save-ats", required_argument, 0, 'S'},
      {"ats-image", required_argument, 0, 'A'},  {"verbose", no_argument, 0, 'v'},
      {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'm': o.mode = optarg; break;
      case 'i': initiator_name = optarg; break;
      case 'P': o.skip_pr = 1; break;
      case 'X': o.skip_xcopy = 1; break;
      case 'R': o.skip_reserve6 = 1; break;
      case 'n': o.expect_naa = optarg; break;
      case 's': o.size_bytes = strtoull(optarg, NULL, 0); break;
      case 'c': o.ats_count = atoi(optarg); break;
      case 'S': o.save_ats = optarg; break;
      case 'A': o.ats_image = optarg; break;
      case 'v': verbose = 1; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind + 1 != argc || o.ats_count < 1) {
    usage(stderr);
    return 2;
  }
  o.url = argv[optind];
  if (strcmp(o.mode, "claim") == 0) mode_claim(&o);
  else if (strcmp(o.mode, "probe") == 0) mode_probe(&o);
  else if (strcmp(o.mode, "identity") == 0) mode_identity(&o);
  else if (strcmp(o.mode, "standby") == 0) mode_standby(&o);
  else if (strcmp(o.mode, "takeover") == 0) mode_takeover(&o);
  else {
    usage(stderr);
    return 2;
  }
  int summary = strcmp(o.mode, "probe") != 0 && strcmp(o.mode, "identity") != 0;
  if (summary) printf("esxi_replay %s: %d ok, %d failed, %d skipped\n", o.mode, n_ok, n_fail, n_skip);
  return n_fail == 0 && (n_ok > 0 || !summary) ? 0 : 1;
}
