package graph

import (
	"context"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/quota"
)

// appLimits presents an app's limits, counting what it uses of the counted
// ones. Only the app the caller acts in is counted: another app's limits
// are FORBIDDEN to all but admin keys.
func (r *Resolver) appLimits(ctx context.Context, a *ent.App) ([]*model.AppLimit, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if a.ID != v.AppID && !v.Admin {
		return nil, fault.Forbiddenf("only admin keys may read the limits of another app")
	}
	out := make([]*model.AppLimit, len(quota.Table))
	for i, l := range quota.Table {
		al := &model.AppLimit{Name: model.AppLimitName(l.Name), Limit: quota.Of(a.Limits, l.Name), Default: l.Default, Description: l.Description}
		if l.Counted {
			n, err := quota.Used(ctx, r.client, a.ID, l.Name, r.now())
			if err != nil {
				return nil, err
			}
			al.Used = &n
		}
		out[i] = al
	}
	return out, nil
}
