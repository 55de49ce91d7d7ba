//! Field offsets of `task_struct` from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! The kernel programs read three `task_struct` fields (`tgid`, `exit_code`, `real_parent`)
//! whose offsets differ between kernel builds. Rust eBPF has no CO-RE relocations, so the loader
//! looks the offsets up here and hands them to the programs in `CONFIG`. Only what that needs is
//! parsed: the type section's record sizes, struct members and names.
//! Format: <https://docs.kernel.org/bpf/btf.html>.

use std::path::{Path, PathBuf};

/// Why an offset could not be found.
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
}

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// One struct/union member: name, type id, offset in bits.
#[derive(Debug, Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

/// A struct or union type.
#[derive(Debug, Clone)]
struct Composite {
    name_off: u32,
    members: Vec<Member>,
}

/// The parsed parts of a BTF blob.
pub struct Btf {
    path: PathBuf,
    strings: Vec<u8>,
    /// Indexed by type id (0 is `void`); `None` for kinds other than struct/union.
    types: Vec<Option<Composite>>,
}

impl Btf {
    /// Reads and parses the BTF file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &data)
    }

    fn parse(path: &Path, data: &[u8]) -> Result<Self, BtfError> {
        let bad = |message: String| BtfError::Malformed {
            path: path.to_owned(),
            message,
        };
        let u32_at = |at: usize| -> Result<u32, BtfError> {
            data.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad(format!("truncated at byte {at}")))
        };
        let magic = data
            .get(0..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0);
        if magic != BTF_MAGIC {
            return Err(bad(format!(
                "bad magic {magic:#x} (want {BTF_MAGIC:#x}, little-endian)"
            )));
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or_else(|| bad("string section out of bounds".to_owned()))?
            .to_vec();
        let mut types = vec![None];
        let mut at = hdr_len + type_off;
        let end = at + type_len;
        while at < end {
            let name_off = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            at += 12;
            let mut entry = None;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let raw_offset = u32_at(m + 8)?;
                        members.push(Member {
                            name_off: u32_at(m)?,
                            type_id: u32_at(m + 4)?,
                            bit_offset: if kflag {
                                raw_offset & 0x00ff_ffff
                            } else {
                                raw_offset
                            },
                        });
                    }
                    entry = Some(Composite { name_off, members });
                    vlen * 12
                }
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                0..=19 => 0,
                other => return Err(bad(format!("unknown type kind {other} at byte {at}"))),
            };
            at += extra;
            types.push(entry);
        }
        Ok(Self {
            path: path.to_owned(),
            strings,
            types,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Byte offset of `member` in `struct strukt`, looking inside anonymous members.
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
        let id = self
            .types
            .iter()
            .position(|t| {
                t.as_ref()
                    .is_some_and(|c| self.name(c.name_off) == strukt.as_bytes())
            })
            .ok_or_else(missing)?;
        self.find(id, member.as_bytes(), 0)
            .map(|bits| bits / 8)
            .ok_or_else(missing)
    }

    /// Bit offset of `member` in composite type `id`, recursing into anonymous members.
    fn find(&self, id: usize, member: &[u8], depth: u32) -> Option<u32> {
        let c = self.types.get(id)?.as_ref()?;
        if depth > 8 {
            return None;
        }
        for m in &c.members {
            if self.name(m.name_off) == member {
                return Some(m.bit_offset);
            }
            if m.name_off == 0 {
                if let Some(inner) = self.find(m.type_id as usize, member, depth + 1) {
                    return Some(m.bit_offset + inner);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with `int` (id 1) and `struct task { int a; union { int b; int tgid; }; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0task\0a\0tgid\0b\0".to_vec();
        let mut types = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        push(&[1, KIND_INT << 24, 4, 32]); // [1] int
        push(&[5, (KIND_STRUCT << 24) | 2, 8, 10, 1, 0, 0, 3, 32]); // [2] task {a, anon}
        push(&[0, (KIND_UNION << 24) | 2, 4, 17, 1, 0, 12, 1, 0]); // [3] union {b, tgid}
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

    #[test]
    fn finds_members_inside_anonymous_unions() {
        let btf = Btf::parse(Path::new("test"), &blob()).expect("parses");
        assert_eq!(btf.member_offset("task", "a").expect("a"), 0);
        assert_eq!(btf.member_offset("task", "tgid").expect("tgid"), 4);
        let err = btf.member_offset("task", "nope").expect_err("missing");
        assert_eq!(err.to_string(), "'test': no member 'nope' in struct 'task'");
    }

    #[test]
    fn rejects_a_file_that_is_not_btf() {
        let err = Btf::parse(Path::new("x"), b"ELF....")
            .err()
            .expect("bad magic");
        assert!(err.to_string().contains("bad magic"), "{err}");
    }

    #[test]
    fn reads_task_struct_offsets_of_the_running_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipping: no {}", path.display());
            return;
        }
        let btf = Btf::from_file(path).expect("kernel BTF parses");
        let tgid = btf.member_offset("task_struct", "tgid").expect("tgid");
        let pid = btf.member_offset("task_struct", "pid").expect("pid");
        assert_eq!(tgid, pid + 4, "tgid follows pid in task_struct");
    }
}
