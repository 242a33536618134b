package fsm

import (
	"boxswap/boxes"
	"boxswap/steps"
)

// dataEntry is one thing a move syncs: a folder of data.folders or a file
// of data.files, each its own step (sync/NAME, final-sync/NAME).
type dataEntry struct {
	name string
	file bool
}

// dataEntries lists what a move syncs and the epilogue backs up: the
// folders, then the files.
func (p planner) dataEntries() []dataEntry {
	var out []dataEntry
	for _, f := range p.cfg.Data.Folders {
		out = append(out, dataEntry{name: f})
	}
	for _, f := range p.cfg.Data.Files {
		out = append(out, dataEntry{name: f, file: true})
	}
	return out
}

// syncParams is how a move syncs one entry from src to dst. The pre-sync
// repeats its passes while production is live and the delta shrinks, and
// leaves a shared box-to-box ssh connection; the final sync then needs no
// handshake and, the pre-sync having counted the deletions, one scan per
// folder (see steps.Sync). The first pass guards the destination: it must
// not hold production, must have room, and must not hold much more than
// the source (data.min_source_fraction).
func (p planner) syncParams(src, dst boxes.Box, e dataEntry, final, dropDev bool) steps.SyncParams {
	c := p.cfg
	prod := c.Functions[boxes.Production]
	// The guard looks for production's address on dst: the declared one,
	// else what the alias resolves to there.
	addr := prod.Address
	if addr == "" {
		addr = prod.Alias
	}
	passes := presyncPasses
	if final {
		passes = 1
	}
	basis := ""
	if dropDev && c.Data.BackupSuffix != "" && !e.file {
		// The usual development box keeps the last cycle's copy of
		// production as FOLDER+suffix (epilogue): the sync starts from it.
		// A file is sent whole or as rsync's delta against itself.
		basis = e.name + c.Data.BackupSuffix
	}
	return steps.SyncParams{
		Src: src.Name, Dst: dst.Name, DstHost: dst.Host, DstPort: dst.Port.Int(), DstUser: dst.User,
		Root: c.Data.Root, Folder: e.name, File: e.file, SrcUnit: p.unit(boxes.Production), Function: boxes.Production,
		MaxDelete: c.Data.MaxDelete, Final: final, Passes: passes, Mux: true, Basis: basis,
		Exclude: c.Data.Exclude, Address: addr,
		RoomMargin: int64(c.Data.RoomMargin), MinSourceFraction: c.Data.MinSourceFraction,
	}
}
