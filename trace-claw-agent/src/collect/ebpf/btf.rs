//! What the loader needs from the kernel's BTF (`/sys/kernel/btf/vmlinux`), read in one
//! streaming pass without holding the file.
//!
//! The kernel programs read `task_struct` fields whose offsets differ between kernel builds.
//! Rust eBPF has no CO-RE relocations, so the loader looks the offsets up here and hands them to
//! the programs in `CONFIG`. The `tp_btf` programs need the BTF type ids of their tracepoints'
//! `btf_trace_*` typedefs, which [`Btf::typedef_btf`] hands to aya in a BTF of a few hundred KB
//! instead of the whole parsed vmlinux BTF (~20 MB in aya's form, most of the agent's peak RSS).
//!
//! Only named things are kept: the string section is scanned for the wanted names, then the
//! type section for the structs and typedefs of those names and every anonymous struct or union
//! (a wanted member may sit inside one; vmlinux has a few thousand). The file is read through a
//! 64 KiB buffer. Format: <https://docs.kernel.org/bpf/btf.html>.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why something could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The BTF file cannot be read.
    #[error("cannot read kernel BTF '{path}'")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not BTF this parser understands.
    #[error("'{path}': {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset.
        message: String,
    },
    /// The struct or member is not in the BTF.
    #[error("'{path}': no member '{member}' in struct '{strukt}'")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The struct looked in.
        strukt: &'static str,
        /// The member looked for.
        member: &'static str,
    },
    /// The typedef is not in the BTF (for `btf_trace_*`: the kernel lacks the tracepoint).
    #[error("'{path}': no typedef '{name}'")]
    MissingTypedef {
        /// The file.
        path: PathBuf,
        /// The typedef looked for.
        name: &'static str,
    },
}

const BTF_MAGIC: u16 = 0xeb9f;
/// Bytes of a type record's common part (`struct btf_type`).
const TYPE_HEADER_LEN: usize = 12;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;
/// Deepest nesting of anonymous members followed.
const MAX_DEPTH: u32 = 8;

/// One struct/union member: name, type id, offset in bits.
#[derive(Debug, Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

/// A kept struct or union: its id, name and members (a range of [`Btf::members`]).
#[derive(Debug, Clone)]
struct Composite {
    id: u32,
    name_off: u32,
    members: std::ops::Range<usize>,
}

/// The wanted parts of a BTF file.
pub struct Btf {
    path: PathBuf,
    /// Each wanted name and the string offsets it is stored at (a name may also be the tail of
    /// a longer string).
    names: Vec<(&'static str, Vec<u32>)>,
    /// The kept structs and unions, by increasing id.
    composites: Vec<Composite>,
    members: Vec<Member>,
    /// Wanted typedefs: name offset and type id.
    typedefs: Vec<(u32, u32)>,
}

impl Btf {
    /// Reads from the BTF file at `path` the structs, members and typedefs named in `names`.
    pub fn from_file(path: &Path, names: &[&'static str]) -> Result<Self, BtfError> {
        let read_error = |source| BtfError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        Self::read(path, BufReader::with_capacity(64 * 1024, file), names).map_err(|e| match e {
            ReadError::Io(source) => read_error(source),
            ReadError::Bad(message) => BtfError::Malformed {
                path: path.to_owned(),
                message,
            },
        })
    }

    fn read<R: Read + Seek>(
        path: &Path,
        mut reader: BufReader<R>,
        names: &[&'static str],
    ) -> Result<Self, ReadError> {
        let mut header = [0u8; 24];
        reader.read_exact(&mut header).map_err(|_| bad_magic(0))?;
        let magic = u16::from_le_bytes([header[0], header[1]]);
        if magic != BTF_MAGIC {
            return Err(bad_magic(magic));
        }
        let word = |at: usize| u64::from(le_u32(&header, at));
        let hdr_len = word(4);
        let (type_off, type_len) = (hdr_len + word(8), word(12));
        let (str_off, str_len) = (hdr_len + word(16), word(20));
        let mut btf = Self {
            path: path.to_owned(),
            names: names.iter().map(|&n| (n, Vec::new())).collect(),
            composites: Vec::new(),
            members: Vec::new(),
            typedefs: Vec::new(),
        };
        reader.seek(SeekFrom::Start(str_off))?;
        btf.scan_strings(&mut reader, str_len)?;
        reader.seek(SeekFrom::Start(type_off))?;
        btf.scan_types(&mut reader, type_len)?;
        Ok(btf)
    }

    /// Records where each wanted name is stored in the string section.
    fn scan_strings<R: Read>(
        &mut self,
        reader: &mut BufReader<R>,
        len: u64,
    ) -> Result<(), ReadError> {
        let mut section = reader.take(len);
        let mut s = Vec::new();
        let mut at = 0u32;
        loop {
            s.clear();
            let n = section.read_until(0, &mut s)?;
            if n == 0 {
                return Ok(());
            }
            let text = s.strip_suffix(b"\0").unwrap_or(&s);
            for (name, offsets) in &mut self.names {
                if !name.is_empty() && text.ends_with(name.as_bytes()) {
                    offsets.push(at + (text.len() - name.len()) as u32);
                }
            }
            at += n as u32;
        }
    }

    /// Keeps the wanted and the anonymous structs and unions, and the wanted typedefs.
    fn scan_types<R: Read>(
        &mut self,
        reader: &mut BufReader<R>,
        len: u64,
    ) -> Result<(), ReadError> {
        let mut wanted: Vec<u32> = self.names.iter().flat_map(|(_, o)| o).copied().collect();
        wanted.sort_unstable();
        let is_wanted = |off: u32| wanted.binary_search(&off).is_ok();
        let mut section = reader.take(len);
        let mut record = [0u8; TYPE_HEADER_LEN];
        let mut extra = Vec::new();
        let mut at = 0u64;
        let mut id = 0u32;
        while at < len {
            id += 1;
            section.read_exact(&mut record).map_err(|_| truncated(at))?;
            let name_off = le_u32(&record, 0);
            let info = le_u32(&record, 4);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                0..=19 => 0,
                other => {
                    return Err(ReadError::Bad(format!(
                        "unknown type kind {other} at byte {at} of the type section"
                    )))
                }
            };
            at += (TYPE_HEADER_LEN + extra_len) as u64;
            extra.resize(extra_len, 0);
            section.read_exact(&mut extra).map_err(|_| truncated(at))?;
            let composite = matches!(kind, KIND_STRUCT | KIND_UNION);
            if composite && (name_off == 0 || is_wanted(name_off)) {
                let start = self.members.len();
                self.members.extend(extra.chunks_exact(12).map(|m| {
                    let raw_offset = le_u32(m, 8);
                    Member {
                        name_off: le_u32(m, 0),
                        type_id: le_u32(m, 4),
                        bit_offset: if kflag {
                            raw_offset & 0x00ff_ffff
                        } else {
                            raw_offset
                        },
                    }
                }));
                self.composites.push(Composite {
                    id,
                    name_off,
                    members: start..self.members.len(),
                });
            } else if kind == KIND_TYPEDEF && is_wanted(name_off) {
                self.typedefs.push((name_off, id));
            }
        }
        Ok(())
    }

    /// Whether the string at `off` is `name` (one of the wanted names).
    fn is(&self, off: u32, name: &str) -> bool {
        self.names
            .iter()
            .any(|(n, offsets)| *n == name && offsets.contains(&off))
    }

    /// Byte offset of `member` in `struct strukt`, looking inside anonymous members. Both names
    /// must have been among those passed to [`Btf::from_file`].
    pub fn member_offset(
        &self,
        strukt: &'static str,
        member: &'static str,
    ) -> Result<u32, BtfError> {
        let missing = || BtfError::Missing {
            path: self.path.clone(),
            strukt,
            member,
        };
        let composite = self
            .composites
            .iter()
            .find(|c| c.name_off != 0 && self.is(c.name_off, strukt))
            .ok_or_else(missing)?;
        self.find(composite, member, 0)
            .map(|bits| bits / 8)
            .ok_or_else(missing)
    }

    /// Bit offset of `member` in `composite`, recursing into anonymous members.
    fn find(&self, composite: &Composite, member: &str, depth: u32) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        for m in self.members.get(composite.members.clone())? {
            if m.name_off != 0 && self.is(m.name_off, member) {
                return Some(m.bit_offset);
            }
            if m.name_off == 0 {
                let inner = self.composite(m.type_id)?;
                if let Some(bits) = self.find(inner, member, depth + 1) {
                    return Some(m.bit_offset + bits);
                }
            }
        }
        None
    }

    fn composite(&self, id: u32) -> Option<&Composite> {
        let i = self.composites.binary_search_by_key(&id, |c| c.id).ok()?;
        self.composites.get(i)
    }

    /// Type id of the typedef `name` (one of the names passed to [`Btf::from_file`]).
    pub fn typedef_id(&self, name: &'static str) -> Result<u32, BtfError> {
        self.typedefs
            .iter()
            .find(|&&(off, _)| self.is(off, name))
            .map(|&(_, id)| id)
            .ok_or_else(|| BtfError::MissingTypedef {
                path: self.path.clone(),
                name,
            })
    }

    /// A BTF blob in which each typedef of `names` has the type id it has in this file, and
    /// every other id up to the highest of them is a placeholder pointer to `void`: all that
    /// aya's `BtfTracePoint::load` reads from the kernel BTF (the id of `btf_trace_<hook>`).
    pub fn typedef_btf(&self, names: &[&'static str]) -> Result<Vec<u8>, BtfError> {
        let mut strings = vec![0u8];
        let mut ids = Vec::with_capacity(names.len());
        for &name in names {
            ids.push((self.typedef_id(name)?, strings.len() as u32));
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
        }
        let last = ids.iter().map(|&(id, _)| id).max().unwrap_or(0);
        let type_len = last as usize * TYPE_HEADER_LEN;
        let mut out = Vec::with_capacity(24 + type_len + strings.len());
        let header = [
            u32::from(BTF_MAGIC) | (1 << 16), // magic, version 1, flags 0
            24,                               // hdr_len
            0,                                // type_off
            type_len as u32,                  // type_len
            type_len as u32,                  // str_off
            strings.len() as u32,             // str_len
        ];
        let records = (1..=last).flat_map(|id| match ids.iter().find(|&&(t, _)| t == id) {
            Some(&(_, name_off)) => [name_off, KIND_TYPEDEF << 24, 0],
            None => [0, KIND_PTR << 24, 0],
        });
        for w in header.into_iter().chain(records) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&strings);
        Ok(out)
    }
}

/// A read failure before the path is attached.
enum ReadError {
    Io(std::io::Error),
    Bad(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

fn bad_magic(magic: u16) -> ReadError {
    ReadError::Bad(format!(
        "bad magic {magic:#x} (want {BTF_MAGIC:#x}, little-endian)"
    ))
}

fn truncated(at: u64) -> ReadError {
    ReadError::Bad(format!("truncated at byte {at} of the type section"))
}

/// The little-endian `u32` at `at` of `bytes` (callers pass in-bounds offsets of fixed-size
/// records; out of bounds reads as 0).
fn le_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    const NAMES: &[&str] = &["task", "a", "tgid", "btf_trace_x"];

    /// A BTF blob: `int` (id 1), `struct task { int a; union { int b; int tgid; }; }` (2, 3),
    /// `typedef int btf_trace_x` (4), `struct other { int a; }` (5). `tgid` is stored only as
    /// the tail of `xtgid`.
    fn blob() -> Vec<u8> {
        // offsets: int 1, task 5, a 10, xtgid 12 (tgid at 13), b 18, btf_trace_x 20, other 32
        let strings = b"\0int\0task\0a\0xtgid\0b\0btf_trace_x\0other\0".to_vec();
        let mut types = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        push(&[1, KIND_INT << 24, 4, 32]); // [1] int
        push(&[5, (KIND_STRUCT << 24) | 2, 8, 10, 1, 0, 0, 3, 32]); // [2] task {a, anon}
        push(&[0, (KIND_UNION << 24) | 2, 4, 18, 1, 0, 13, 1, 0]); // [3] union {b, tgid}
        push(&[20, KIND_TYPEDEF << 24, 1]); // [4] btf_trace_x
        push(&[32, (KIND_STRUCT << 24) | 1, 4, 10, 1, 0]); // [5] other {a}
        let mut out = Vec::new();
        for w in [
            u32::from(BTF_MAGIC) | (1 << 16),
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    fn parse(data: Vec<u8>) -> Result<Btf, ReadError> {
        Btf::read(Path::new("test"), BufReader::new(Cursor::new(data)), NAMES)
    }

    #[test]
    fn finds_members_inside_anonymous_unions() {
        let btf = parse(blob()).ok().expect("parses");
        assert_eq!(btf.member_offset("task", "a").expect("a"), 0);
        assert_eq!(btf.member_offset("task", "tgid").expect("tgid"), 4);
        let err = btf.member_offset("task", "nope").expect_err("missing");
        assert_eq!(err.to_string(), "'test': no member 'nope' in struct 'task'");
    }

    #[test]
    fn finds_typedef_ids_and_names_a_missing_one() {
        let btf = parse(blob()).ok().expect("parses");
        assert_eq!(btf.typedef_id("btf_trace_x").expect("typedef"), 4);
        let err = btf.typedef_id("task").expect_err("a struct is no typedef");
        assert_eq!(err.to_string(), "'test': no typedef 'task'");
    }

    #[test]
    fn rejects_a_file_that_is_not_btf() {
        let err = parse(b"ELF....".to_vec()).err().expect("bad magic");
        assert!(matches!(err, ReadError::Bad(m) if m.contains("bad magic")));
    }

    #[test]
    fn rejects_a_truncated_type_section() {
        let mut data = blob();
        data[12..16].copy_from_slice(&200u32.to_le_bytes()); // type_len past the strings
        let err = parse(data).err().expect("truncated");
        assert!(matches!(err, ReadError::Bad(m) if m.contains("truncated")));
    }

    #[cfg(not(no_ebpf))]
    #[test]
    fn aya_finds_the_typedef_at_its_id_in_the_small_btf() {
        let btf = parse(blob()).ok().expect("parses");
        let small = btf.typedef_btf(&["btf_trace_x"]).expect("typedef");
        let parsed = aya::Btf::parse(&small, aya::Endianness::default()).expect("aya parses");
        let id = parsed
            .id_by_type_name_kind("btf_trace_x", aya_obj::btf::BtfKind::Typedef)
            .expect("aya finds it");
        assert_eq!(id, 4);
    }

    /// aya's whole parse of the running kernel's BTF is the ground truth for the typedef ids.
    #[cfg(not(no_ebpf))]
    #[test]
    fn typedef_ids_of_the_running_kernel_are_the_ones_aya_finds() {
        const HOOKS: [&str; 2] = [
            "btf_trace_sched_stat_runtime",
            "btf_trace_sched_process_free",
        ];
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipping: no {}", path.display());
            return;
        }
        let ours = Btf::from_file(path, &HOOKS).expect("kernel BTF");
        let full = aya::Btf::from_sys_fs().expect("aya parses the kernel BTF");
        let small = aya::Btf::parse(
            &ours.typedef_btf(&HOOKS).expect("typedefs"),
            aya::Endianness::default(),
        )
        .expect("aya parses the small BTF");
        for hook in HOOKS {
            let want = full
                .id_by_type_name_kind(hook, aya_obj::btf::BtfKind::Typedef)
                .expect("in the kernel BTF");
            assert_eq!(ours.typedef_id(hook).expect("found"), want, "{hook}");
            let got = small.id_by_type_name_kind(hook, aya_obj::btf::BtfKind::Typedef);
            assert_eq!(got.expect("in the small BTF"), want, "{hook}");
        }
    }

    #[test]
    fn reads_task_struct_offsets_of_the_running_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipping: no {}", path.display());
            return;
        }
        let btf = Btf::from_file(path, &["task_struct", "tgid", "pid"]).expect("kernel BTF");
        let tgid = btf.member_offset("task_struct", "tgid").expect("tgid");
        let pid = btf.member_offset("task_struct", "pid").expect("pid");
        assert_eq!(tgid, pid + 4, "tgid follows pid in task_struct");
    }
}
