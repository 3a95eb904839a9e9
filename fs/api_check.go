package fs

import gofs "github.com/hanwen/go-fuse/v2/fs"

// Which go-fuse interfaces each type implements.

var (
	_ gofs.NodeGetattrer      = (*Dir)(nil)
	_ gofs.NodeSetattrer      = (*Dir)(nil)
	_ gofs.NodeLookuper       = (*Dir)(nil)
	_ gofs.NodeReaddirer      = (*Dir)(nil)
	_ gofs.NodeOpendirHandler = (*Dir)(nil)
	_ gofs.NodeMkdirer        = (*Dir)(nil)
	_ gofs.NodeCreater        = (*Dir)(nil)
	_ gofs.NodeUnlinker       = (*Dir)(nil)
	_ gofs.NodeRmdirer        = (*Dir)(nil)
	_ gofs.NodeRenamer        = (*Dir)(nil)
	_ gofs.NodeStatfser       = (*Dir)(nil)

	_ gofs.NodeGetattrer = (*File)(nil)
	_ gofs.NodeSetattrer = (*File)(nil)
	_ gofs.NodeOpener    = (*File)(nil)

	_ gofs.FileReader    = (*handle)(nil)
	_ gofs.FileWriter    = (*handle)(nil)
	_ gofs.FileFlusher   = (*handle)(nil)
	_ gofs.FileFsyncer   = (*handle)(nil)
	_ gofs.FileReleaser  = (*handle)(nil)
	_ gofs.FileAllocater = (*handle)(nil)

	_ gofs.NodeGetattrer = (*versionsNode)(nil)
	_ gofs.NodeSetattrer = (*versionsNode)(nil)
	_ gofs.NodeLookuper  = (*versionsNode)(nil)
	_ gofs.NodeReaddirer = (*versionsNode)(nil)
	_ gofs.NodeOpener    = (*versionsNode)(nil)
	_ gofs.NodeReader    = (*versionsNode)(nil)
	_ gofs.NodeCreater   = (*versionsNode)(nil)
	_ gofs.NodeMkdirer   = (*versionsNode)(nil)
	_ gofs.NodeUnlinker  = (*versionsNode)(nil)
	_ gofs.NodeRmdirer   = (*versionsNode)(nil)
	_ gofs.NodeRenamer   = (*versionsNode)(nil)
)
