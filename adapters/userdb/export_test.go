package userdb

// PipelinedRegistrations is how many registrations committed as a
// sqldb.Pipeline.
func (s *UserStore) PipelinedRegistrations() int64 { return s.pipelined.Load() }
