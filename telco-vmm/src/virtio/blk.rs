//! virtio-blk on a raw image file (virtio 1.2 section 5.2): read, write, flush and get-id, one
//! request at a time on the vCPU thread that notified the queue.

use std::fs::File;
use std::os::unix::fs::FileExt;

use virtio_queue::{Queue, QueueT};

use super::chain::{ChainError, CheckedChain};
use super::{Interrupt, VIRTIO_F_VERSION_1, VirtioDevice};
use crate::memory::GuestMemory;

const VIRTIO_ID_BLOCK: u32 = 2;
const VIRTIO_BLK_F_RO: u64 = 1 << 5;
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
const QUEUE_SIZE: u16 = 256;
const SECTOR_SIZE: u64 = 512;
const REQUEST_HEADER_LEN: usize = 16;
/// Largest data transfer one request may ask for.
const MAX_TRANSFER: u64 = 4 << 20;
const MAX_TRANSFER_BYTES: usize = 4 << 20;
/// The identifier `VIRTIO_BLK_T_GET_ID` returns, padded with NULs to 20 bytes.
const DEVICE_ID: &[u8] = b"telco-vmm";

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

#[derive(Debug)]
struct Active {
    memory: GuestMemory,
    queue: Queue,
    interrupt: Interrupt,
}

/// The block device model.
#[derive(Debug)]
pub(crate) struct Block {
    file: File,
    capacity_sectors: u64,
    read_only: bool,
    active: Option<Active>,
}

impl Block {
    pub(crate) fn open(config: &super::BlockConfig) -> std::io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(!config.read_only)
            .open(&config.path)?;
        let len = file.metadata()?.len();
        Ok(Block {
            file,
            capacity_sectors: len / SECTOR_SIZE,
            read_only: config.read_only,
            active: None,
        })
    }

    /// Runs one request and returns its status and the data to put before the status byte.
    fn execute(
        &self,
        memory: &GuestMemory,
        chain: &CheckedChain,
    ) -> Result<(u8, Vec<u8>), ChainError> {
        let readable = chain.read_all(memory, REQUEST_HEADER_LEN + MAX_TRANSFER_BYTES)?;
        if readable.len() < REQUEST_HEADER_LEN || chain.writable_len() == 0 {
            return Ok((S_IOERR, Vec::new()));
        }
        let request_type = u32::from_le_bytes(readable[0..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(readable[8..16].try_into().unwrap_or_default());
        let payload = &readable[REQUEST_HEADER_LEN..];
        let outcome = match request_type {
            T_IN => self.read(sector, chain.writable_len() - 1),
            T_OUT if self.read_only => Ok((S_IOERR, Vec::new())),
            T_OUT => self.write(sector, payload),
            T_FLUSH => Ok((self.file.sync_data().map_or(S_IOERR, |()| S_OK), Vec::new())),
            T_GET_ID => {
                let mut id = [0u8; 20];
                id[..DEVICE_ID.len()].copy_from_slice(DEVICE_ID);
                let room = usize::try_from(chain.writable_len() - 1)
                    .unwrap_or(0)
                    .min(id.len());
                Ok((S_OK, id[..room].to_vec()))
            }
            _ => Ok((S_UNSUPP, Vec::new())),
        };
        Ok(outcome.unwrap_or_else(|error: std::io::Error| {
            tracing::debug!(%error, sector, "virtio-blk request failed");
            (S_IOERR, Vec::new())
        }))
    }

    fn check_range(&self, sector: u64, len: u64) -> bool {
        len.is_multiple_of(SECTOR_SIZE)
            && len <= MAX_TRANSFER
            && sector
                .checked_add(len / SECTOR_SIZE)
                .is_some_and(|end| end <= self.capacity_sectors)
    }

    fn read(&self, sector: u64, len: u64) -> std::io::Result<(u8, Vec<u8>)> {
        if !self.check_range(sector, len) {
            return Ok((S_IOERR, Vec::new()));
        }
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.file.read_exact_at(&mut data, sector * SECTOR_SIZE)?;
        Ok((S_OK, data))
    }

    fn write(&self, sector: u64, data: &[u8]) -> std::io::Result<(u8, Vec<u8>)> {
        if !self.check_range(sector, data.len() as u64) {
            return Ok((S_IOERR, Vec::new()));
        }
        self.file.write_all_at(data, sector * SECTOR_SIZE)?;
        Ok((S_OK, Vec::new()))
    }

    fn process_queue(&mut self) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        let mut used_any = false;
        while let Some(popped) = CheckedChain::pop(&mut active.queue, &active.memory) {
            let (head, written) = match popped {
                Ok(chain) => {
                    let written = match self.execute(&active.memory, &chain) {
                        Ok((status, mut data)) => {
                            data.push(status);
                            chain.write_all(&active.memory, &data).unwrap_or(0)
                        }
                        Err(error) => {
                            tracing::debug!(%error, "virtio-blk chain rejected");
                            0
                        }
                    };
                    (chain.head, written)
                }
                Err((head, error)) => {
                    tracing::debug!(%error, "virtio-blk chain rejected");
                    (head, 0)
                }
            };
            if let Err(error) = active.queue.add_used(&active.memory, head, written) {
                tracing::debug!(%error, "virtio-blk add_used failed");
            }
            used_any = true;
        }
        if used_any
            && active
                .queue
                .needs_notification(&active.memory)
                .unwrap_or(true)
        {
            active.interrupt.signal_used();
        }
        self.active = Some(active);
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let mut features = VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH;
        if self.read_only {
            features |= VIRTIO_BLK_F_RO;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // Configuration space: capacity in 512-byte sectors (le64) at offset 0.
        let config = self.capacity_sectors.to_le_bytes();
        read_config_bytes(config.as_slice(), offset, data);
    }

    fn activate(
        &mut self,
        memory: GuestMemory,
        mut queues: Vec<Queue>,
        _features: u64,
        interrupt: Interrupt,
    ) -> std::io::Result<()> {
        let queue = queues
            .pop()
            .ok_or_else(|| std::io::Error::other("virtio-blk needs one queue"))?;
        self.active = Some(Active {
            memory,
            queue,
            interrupt,
        });
        Ok(())
    }

    fn notify(&mut self, _queue: u16) {
        self.process_queue();
    }

    fn reset(&mut self) {
        self.active = None;
    }
}

/// Copies the part of `config` at `offset` into `data`, zero beyond its end.
pub(crate) fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if let Some(source) = config.get(start..) {
        let len = source.len().min(data.len());
        data[..len].copy_from_slice(&source[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::BlockConfig;
    use crate::virtio::chain::tests::{F_NEXT, F_WRITE, TestQueue};
    use vm_memory::{Bytes, GuestAddress};
    use vmm_sys_util::eventfd::EventFd;

    fn block_with_queue(
        image: &[u8],
        read_only: bool,
    ) -> (Block, TestQueue, tempfile::NamedTempFile) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), image).unwrap();
        let mut block = Block::open(&BlockConfig::new(file.path(), read_only)).unwrap();
        let q = TestQueue::new(16);
        let interrupt = Interrupt::new(EventFd::new(0).unwrap());
        block
            .activate(
                q.mem.clone(),
                vec![Queue::try_from(q.queue.state()).unwrap()],
                VIRTIO_F_VERSION_1,
                interrupt,
            )
            .unwrap();
        (block, q, file)
    }

    fn write_header(q: &TestQueue, addr: u64, request_type: u32, sector: u64) {
        q.mem.write_obj(request_type, GuestAddress(addr)).unwrap();
        q.mem.write_obj(0u32, GuestAddress(addr + 4)).unwrap();
        q.mem.write_obj(sector, GuestAddress(addr + 8)).unwrap();
    }

    #[test]
    fn read_request_copies_sector_and_sets_ok() {
        let mut image = vec![0u8; 4096];
        image[512..1024].fill(0xab);
        let (mut block, mut q, _file) = block_with_queue(&image, true);
        write_header(&q, 0x10000, T_IN, 1);
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 512, F_WRITE | F_NEXT, 2);
        q.set_descriptor(2, 0x30000, 1, F_WRITE, 0);
        q.make_available(0);
        block.notify(0);

        let mut data = [0u8; 512];
        q.mem.read_slice(&mut data, GuestAddress(0x20000)).unwrap();
        assert!(data.iter().all(|b| *b == 0xab));
        assert_eq!(q.mem.read_obj::<u8>(GuestAddress(0x30000)).unwrap(), S_OK);
        assert_eq!(q.used_idx(), 1);
        assert_eq!(q.used(0), (0, 513));
    }

    #[test]
    fn read_past_capacity_sets_ioerr() {
        let (mut block, mut q, _file) = block_with_queue(&[0u8; 1024], true);
        write_header(&q, 0x10000, T_IN, 2);
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 512, F_WRITE | F_NEXT, 2);
        q.set_descriptor(2, 0x30000, 1, F_WRITE, 0);
        q.make_available(0);
        block.notify(0);
        // The data area is left unwritten and the status is IOERR at the chain's first
        // writable byte.
        assert_eq!(
            q.mem.read_obj::<u8>(GuestAddress(0x20000)).unwrap(),
            S_IOERR
        );
        assert_eq!(q.used_idx(), 1);
    }

    #[test]
    fn write_to_read_only_image_is_refused() {
        let (mut block, mut q, file) = block_with_queue(&[0u8; 1024], true);
        write_header(&q, 0x10000, T_OUT, 0);
        q.mem
            .write_slice(&[0x55; 512], GuestAddress(0x10010))
            .unwrap();
        q.set_descriptor(0, 0x10000, 16 + 512, F_NEXT, 1);
        q.set_descriptor(1, 0x30000, 1, F_WRITE, 0);
        q.make_available(0);
        block.notify(0);
        assert_eq!(
            q.mem.read_obj::<u8>(GuestAddress(0x30000)).unwrap(),
            S_IOERR
        );
        assert!(std::fs::read(file.path()).unwrap().iter().all(|b| *b == 0));
    }

    #[test]
    fn write_request_reaches_file() {
        let (mut block, mut q, file) = block_with_queue(&[0u8; 1024], false);
        write_header(&q, 0x10000, T_OUT, 1);
        q.mem
            .write_slice(&[0x55; 512], GuestAddress(0x20000))
            .unwrap();
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 512, F_NEXT, 2);
        q.set_descriptor(2, 0x30000, 1, F_WRITE, 0);
        q.make_available(0);
        block.notify(0);
        assert_eq!(q.mem.read_obj::<u8>(GuestAddress(0x30000)).unwrap(), S_OK);
        let contents = std::fs::read(file.path()).unwrap();
        assert!(contents[512..].iter().all(|b| *b == 0x55));
        assert!(contents[..512].iter().all(|b| *b == 0));
    }

    #[test]
    fn hostile_chain_is_consumed_with_zero_length() {
        let (mut block, mut q, _file) = block_with_queue(&[0u8; 1024], false);
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 0);
        q.make_available(0);
        block.notify(0);
        assert_eq!(q.used_idx(), 1);
        assert_eq!(q.used(0), (0, 0));
    }

    #[test]
    fn config_reports_capacity_in_sectors() {
        let (block, _q, _file) = block_with_queue(&[0u8; 4096], true);
        let mut data = [0u8; 8];
        block.read_config(0, &mut data);
        assert_eq!(u64::from_le_bytes(data), 8);
        assert!(block.features() & VIRTIO_BLK_F_RO != 0);
    }
}
