package enaio

import (
	"strconv"
	"time"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// The protocol facts this client relies on that no real server has
// confirmed yet (spec §9 lists them as UNVERIFIED) live in this file, and
// only here: when a real server answers otherwise, this is the one place
// to change. The test server (enaiotest) refuses any parameter a job does
// not take, so a wrong guess about a name fails a test instead of being
// ignored.

// Job names. The dms engine's jobs are sent as "DMS.", the spelling of the
// reference client (ECMind's ecmind_blue_client job enum); the docs say
// servers take both spellings of that prefix (spec §2.1.2, [D29]).
const (
	jobGetObjDef        = "DMS.GetObjDef"
	jobGetObjectType    = "DMS.GetObjectTypeByID"
	jobGetResultList    = "DMS.GetResultList"
	jobGetObjectHistory = "DMS.GetObjectHistory"
	jobXMLInsert        = "DMS.XMLInsert"
	jobXMLUpdate        = "DMS.XMLUpdate"
	jobXMLMove          = "DMS.XMLMove"
	jobXMLDelete        = "DMS.XMLDelete"
	jobStoreInCache     = "std.StoreInCacheByID"
	jobGetDocVersion    = "std.GetDocVersion"
)

// storeInCacheFiles is std.StoreInCacheByID's Flags for "the document's
// files only": 0 adds the preview (DIA) file, 2 sends only that.
const storeInCacheFiles = 1

// storeInCacheRequest reads a document's current files.
func storeInCacheRequest(id int) rpc.Request {
	return rpc.Request{Job: jobStoreInCache, Params: []rpc.Param{
		rpc.Int("Flags", storeInCacheFiles), rpc.Int("dwObjectID", id), rpc.Int("Convert", 0)}}
}

// Conversions std.StoreInCacheByID makes (its Convert, spec §3.4): one
// PDF of main types 1–4, one multi-page TIFF of main types 2–3.
const (
	convertPDF  = 1
	convertTIFF = 8
)

// renditionRequest reads a document converted, or (convert 0,
// annotated) its pages with their annotations burned in. The
// annotations parameter is UNVERIFIED: ECMind's files(add_annotations=)
// passes something to std.StoreInCacheByID, and the cnv jobs call theirs
// AddAnnotations (1: burn in), which this client sends (spec §3.4,
// [D33]).
func renditionRequest(id, convert int, annotated bool) rpc.Request {
	ps := []rpc.Param{rpc.Int("Flags", storeInCacheFiles), rpc.Int("dwObjectID", id), rpc.Int("Convert", convert)}
	if annotated {
		ps = append(ps, rpc.Int("AddAnnotations", 1))
	}
	return rpc.Request{Job: jobStoreInCache, Params: ps}
}

// docVersionRequest reads a saved version. std.GetDocVersion's parameter
// names are UNVERIFIED (spec §9.1): dwObjectID as for StoreInCacheByID,
// VersionGUID as the history's modification GUID.
func docVersionRequest(id int, guid string) rpc.Request {
	return rpc.Request{Job: jobGetDocVersion, Params: []rpc.Param{
		rpc.Int("Flags", storeInCacheFiles), rpc.Int("dwObjectID", id), rpc.Str("VersionGUID", guid)}}
}

// concurrencyField is the system field taken as the concurrency timestamp
// that dms.XMLUpdate compares (UNVERIFIED that OBJECT_TIME is the one).
const concurrencyField = dmsxml.ObjectTime

// parseModifyTime reads OBJECT_MODIFYTIME. Its value format is UNVERIFIED
// (spec §1): epoch seconds and the DATETIME display formats are accepted.
func parseModifyTime(v string) time.Time {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0)
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "02.01.2006 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t
		}
	}
	return time.Time{}
}

// cond is one condition of a child listing. Listing children by the
// location system fields (REG_STAID/REG_PARID, SDSTA_ID/SDREG_ID) with
// <NULL/> for "not in a register" is one of the two ways the spec offers
// (§3.2); which a real server answers best, and whether SDREG_ID is NULL or
// 0 for documents lying directly in a folder, is UNVERIFIED (§9.4).
func cond(field, value string) dmsxml.FieldCondition {
	c := dmsxml.FieldCondition{InternalName: field, System: "1", Operator: "="}
	if value == "" {
		c.Null = &struct{}{}
	} else {
		c.Values = []string{value}
	}
	return c
}
